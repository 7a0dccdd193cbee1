"""Bounces and complaints that arrive after the relay said 250.

Each digest goes out with a VERP envelope sender, ``bounces+<row>-<mac>@domain`` (from
``[mail] bounce_address``), the MAC an HMAC of the outbox row's number under the secret
key, so a report names exactly one message and cannot be forged. Reports are read from a
Maildir, an mbox or single files (``seriesfeed.mailsource``): delivery status notifications
and feedback reports (ARF, RFC 5965). A notification's own RFC 3464 fields (Action, Status)
decide whether a recipient failed permanently; only reports without them go to flufl.bounce
(the only module importing it) for the common MTAs' own formats, and a delay warning is
transient whatever its text quotes. A permanent failure fails the row and counts a hard
bounce on the subscriber (bounced at ``[mail] bounce_limit``); a transient one is counted;
a complaint unsubscribes and suppresses the address at once. Mail without a valid token
changes nothing.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import hmac
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from flufl.bounce import all_failures

from seriesfeed import tokens
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ImportError_, StoreError, ValidationError
from seriesfeed.logs import mask_address
from seriesfeed.mailsource import MAX_MESSAGE, Incoming, could_be_report, incoming, parse_bounded
from seriesfeed.smtpcodes import ENHANCED_STATUS, SMTP_REPLY
from seriesfeed.store import Store
from seriesfeed.store import ops as oq
from seriesfeed.store import subscribers as sq

__all__ = [
    "ENVELOPE_HEADERS",
    "MAC_HEX",
    "MAX_MESSAGE",
    "BounceRun",
    "Failure",
    "Report",
    "envelope_sender",
    "failures_of",
    "process",
    "read_report",
    "row_from",
]

log = logging.getLogger("seriesfeed.bounces")  # the logger's name operators filter on: kept
# flufl.bounce logs every detector it runs (17 INFO lines a report) and a detector's failure
# with its traceback before re-raising it; the failure is logged here as one line instead
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
MAC_HEX = 20  # 80 bits; lower-case hex survives MTAs that fold the local part's case


def _verp_key(key: bytes) -> bytes:
    return hmac.new(key, b"seriesfeed/verp", hashlib.sha256).digest()


def _mac(key: bytes, row_id: int) -> str:
    return hmac.new(_verp_key(key), str(row_id).encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def envelope_sender(config: Config, key: bytes, row_id: int) -> str:
    """The VERP envelope sender naming outbox row ``row_id``."""
    local, _, domain = config.mail.bounce_address.partition("@")
    return f"{local}+{row_id}-{_mac(key, row_id)}@{domain}"


def _token_pattern(config: Config) -> re.Pattern[str]:
    local, _, domain = config.mail.bounce_address.partition("@")
    return re.compile(rf"{re.escape(local)}\+([0-9]{{1,18}})-([0-9a-f]{{{MAC_HEX}}})@"
                      rf"{re.escape(domain)}", re.IGNORECASE)


def row_from(config: Config, key: bytes, text: str) -> int | None:
    """The outbox row a VERP address in ``text`` names, if its MAC is right."""
    if not config.mail.bounce_address:
        return None
    for m in _token_pattern(config).finditer(text):
        row_id, mac = int(m.group(1)), m.group(2).lower()
        if hmac.compare_digest(mac, _mac(key, row_id)):
            return row_id
    return None


# -- reading reports ------------------------------------------------------------------------

ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To",
                    "X-Failed-Recipients-For")
_UNSUBSCRIBE = re.compile(r"/unsubscribe/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Failure:
    """One recipient a report says was not delivered, and how badly."""

    address: str
    kind: str  # hard or soft
    status: str = ""  # the enhanced status code (5.1.1), when the report gives one
    diagnostic: str = ""
    final: str = ""  # a DSN's Final-Recipient when it differs from the Original-Recipient

    def names(self, recipient: str) -> bool:
        wanted = recipient.strip().lower()
        return wanted in (self.address.lower(), self.final.lower())

    @property
    def detail(self) -> str:
        return " ".join(p for p in (self.status, self.diagnostic) if p) or self.address


@dataclass(frozen=True)
class Report:
    kind: str  # hard, soft, complaint, or none (not a failure report)
    detail: str
    row_id: int | None
    subscriber_id: int | None = None  # a complaint that names only the subscriber
    failures: tuple[Failure, ...] = ()  # the recipients a delivery report names

    def about(self, recipient: str) -> Report:
        """This report as it concerns ``recipient`` (the outbox row's address): the verdict
        on that recipient when the report names it, else the report's own (a VERP token
        already proves the report is about our message, say one forwarded elsewhere)."""
        for failure in self.failures:
            if failure.names(recipient):
                return dataclasses.replace(self, kind=failure.kind, detail=failure.detail)
        return self


def _embedded(msg: Message) -> Iterator[Message]:
    """The returned original message (or its headers) inside a report."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list):
                yield from (p for p in payload if isinstance(p, Message))
        elif ctype == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                yield email.message_from_bytes(text, policy=email.policy.compat32)


_NOT_BOUNCES = ("delivered", "relayed", "expanded")


def _status_blocks(msg: Message) -> Iterator[Message]:
    """The per-recipient field blocks of every message/delivery-status part."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            # encoded (base64, quoted-printable) or built by hand: the blocks are the text's
            # paragraphs
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(blocks)
            blocks = [HeaderParser(policy=email.policy.compat32).parsestr(para.strip() + "\n")
                      for para in re.split(r"\r?\n\s*\r?\n", text) if para.strip()]
        yield from (b for b in blocks if isinstance(b, Message))


def _recipient(block: Message, name: str) -> str:
    """The address of a Final-Recipient or Original-Recipient field (``rfc822; a@b``)."""
    value = " ".join(str(block.get(name, "")).split())
    kind, sep, address = value.partition(";")
    if not sep:
        address = kind
    elif kind.strip().lower() not in ("rfc822", "utf-8", "x-unknown", ""):
        return ""
    address = address.strip().strip("<>").strip()
    return address if "@" in address else ""


def _verdict(action: str, status: str, diagnostic: str) -> str:
    """hard, soft or none, from a DSN block's own fields (RFC 3464): the action says
    whether delivery is over, the status class whether the cause is permanent."""
    if action in _NOT_BOUNCES:
        return "none"
    if action == "delayed":
        return "soft"  # not over: the reporting MTA is still trying
    code = status[:1] if status[:1] in ("2", "4", "5") else ""
    if not code:
        reply = SMTP_REPLY.search(diagnostic)
        code = reply.group(1) if reply else ""
    if code == "5" or (not code and action == "failed"):
        return "hard"
    if code == "4":
        return "soft"  # given up after a temporary condition: the address is not bad
    return "none"


def _dsn_failures(msg: Message) -> tuple[bool, list[Failure]]:
    """(whether the report carries RFC 3464 fields, the recipients they say failed)."""
    has_fields = False
    failures: list[Failure] = []
    for block in _status_blocks(msg):
        action = str(block.get("Action", "")).strip().lower().split(" ")[0].split("(")[0]
        if action.startswith(("fail", "error")):
            action = "failed"  # "failure" and OpenSMTPD's "error" are seen in the wild
        raw_status = str(block.get("Status", ""))
        found = ENHANCED_STATUS.search(raw_status) or SMTP_REPLY.search(raw_status.strip())
        status = found.group(0).strip() if found else ""  # some MTAs give "553 Exceeded…"
        if not action and not status:
            continue  # the per-message block (Reporting-MTA, Arrival-Date)
        final = _recipient(block, "Final-Recipient")
        original = _recipient(block, "Original-Recipient") or final
        if not original:
            continue  # no recipient named: not a bounce of anyone (invariant 11)
        has_fields = True
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())[:300]
        kind = _verdict(action, status, diagnostic)
        if kind != "none":
            failures.append(Failure(original, kind, status, diagnostic,
                                    final if final.lower() != original.lower() else ""))
    return has_fields, failures


_WARNING_SUBJECT = re.compile(
    r"warning: message .* delayed|\(delay\)|delayed mail|delivery delayed|message delayed|"
    r"delivery status notification \(delay|could not send message for past|"
    r"warning: could not send", re.IGNORECASE)
_WARNING_TEXT = re.compile(
    r"this is a warning message only|has not yet been delivered|no action is required on "
    r"your part|will (?:continue to )?(?:be )?retr(?:y|ied)|delivery attempts will continue",
    re.IGNORECASE)


def _first_text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return raw[:20_000].decode("utf-8", "replace")
    return ""


def _heuristic_failures(msg: Message) -> list[Failure]:
    """The recipients a report without RFC 3464 fields names (flufl.bounce's detectors for
    the common MTAs' own formats), judged transient when the report is a delay warning or
    quotes only temporary (4xx) replies."""
    if not str(msg.get("From", "")).strip():
        # flufl.bounce's Yale detector takes the first of the From addresses and raises
        # IndexError when there is none, which ends the scan before the detectors after it
        # (SMTP32, Postfix, qmail, SimpleMatch…) run; a blank From yields one empty address
        del msg["From"]
        msg["From"] = " "
    try:
        temporary, permanent = all_failures(msg)
    except Exception as err:  # noqa: BLE001 - a heuristic detector choking is no failure report
        log.warning("bounces: flufl.bounce could not read a report (%s: %s)",
                    type(err).__name__, err)
        return []
    if not temporary and not permanent:
        return []
    text = _first_text(msg)
    replies = {m.group(1) for m in SMTP_REPLY.finditer(text)}
    warning = any(_WARNING_SUBJECT.search(str(s)) for s in msg.get_all("Subject", [])) or \
        bool(_WARNING_TEXT.search(text))
    transient_only = warning or (replies and "5" not in replies)
    quoted = next((" ".join(line.split())[:300] for line in text.splitlines()
                   if SMTP_REPLY.search(line.strip())), "")
    out: list[Failure] = []
    for address, kind in [(a, "soft") for a in sorted(temporary)] + \
            [(a, "soft" if transient_only else "hard") for a in sorted(permanent)]:
        text_address = address.decode("utf-8", "replace")
        status = ENHANCED_STATUS.search(quoted)
        out.append(Failure(text_address, kind, status.group(0) if status else "", quoted))
    return out


def failures_of(msg: Message) -> list[Failure]:
    """Every recipient a delivery report says failed, and whether permanently. A report's
    own RFC 3464 fields decide where it has them; flufl.bounce reads the rest."""
    has_fields, failures = _dsn_failures(msg)
    return failures if has_fields else _heuristic_failures(msg)


def _is_report(msg: Message, kind: str) -> bool:
    return msg.get_content_type() == "multipart/report" and \
        str(msg.get_param("report-type", "")).lower() == kind


def _find_row(config: Config, key: bytes, msg: Message) -> int | None:
    # where the report was delivered to (the VERP address), then the returned original's
    # envelope sender
    for name in ENVELOPE_HEADERS:
        for value in msg.get_all(name, []):
            found = row_from(config, key, str(value))
            if found is not None:
                return found
    for inner in _embedded(msg):
        for name in ("Return-Path", "Sender", *ENVELOPE_HEADERS):
            for value in inner.get_all(name, []):
                found = row_from(config, key, str(value))
                if found is not None:
                    return found
    return None


def _complainant(config: Config, key: bytes, msg: Message) -> int | None:
    """The subscriber whose signed unsubscribe link the reported message carries."""
    for inner in _embedded(msg):
        for value in inner.get_all("List-Unsubscribe", []):
            for m in _UNSUBSCRIBE.finditer(str(value)):
                try:
                    return tokens.read_token(key, tokens.Purpose.UNSUBSCRIBE,
                                             m.group(1)).subscriber_id
                except ValidationError:
                    continue
    return None


def read_report(config: Config, key: bytes, msg: Message) -> Report:
    """What one message reports, and which outbox row (signed) it is about."""
    row = _find_row(config, key, msg)
    if _is_report(msg, "feedback-report"):
        feedback = ""
        for part in msg.walk():
            if part.get_content_type() == "message/feedback-report":
                blocks = part.get_payload()
                if isinstance(blocks, list) and blocks and isinstance(blocks[0], Message):
                    feedback = str(blocks[0].get("Feedback-Type", "")).strip().lower()
        if feedback in ("abuse", "fraud", ""):
            subscriber = None if row is not None else _complainant(config, key, msg)
            return Report("complaint", f"ARF {feedback or 'abuse'}", row, subscriber)
        return Report("none", f"ARF {feedback}", row)
    failures = tuple(failures_of(msg))
    for kind in ("hard", "soft"):
        first = next((f for f in failures if f.kind == kind), None)
        if first is not None:
            return Report(kind, first.detail, row, failures=failures)
    return Report("none", "", row)


# -- the run ------------------------------------------------------------------------------

@dataclass
class BounceRun:
    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    unmatched: int = 0  # a failure report with no valid token: nothing changed
    not_reports: int = 0
    repeated: int = 0  # a report already counted
    unreadable: int = 0  # too large, too deeply nested or failing to parse: set aside
    not_moved: int = 0  # handled, but could not be moved out of the unread messages
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.messages} messages: {self.hard} hard bounces, {self.soft} transient, "
                f"{self.complaints} complaints, {self.repeated} already counted, "
                f"{self.unmatched} not matched to a message we sent, {self.not_reports} "
                f"not bounce or complaint reports, {self.unreadable} unreadable"
                + (f", {self.not_moved} not moved" if self.not_moved else ""))


def process(store: Store, config: Config, path: Path) -> BounceRun:
    """Read every report under ``path`` and apply what each says (one transaction each).

    Mail whose head shows it cannot be a report is counted and never parsed. A message that
    cannot be read, or whose handling fails, is that message's problem: counted, logged and
    set aside (a Maildir's ``.seriesfeed-unreadable`` folder), and the rest are read. Only a
    store failure stops the run; the message then stays unread for the next one."""
    if not path.exists():
        raise ValidationError(f"no such file or folder: {path}", field="PATH")
    key = tokens.ensure_secret_key(config)
    run = BounceRun()
    for item in incoming(path):
        run.messages += 1
        try:
            if not could_be_report(item.head()):
                run.not_reports += 1
            else:
                report = read_report(config, key, parse_bounded(item.raw(), item.where))
                _apply(store, config, key, report, run)
        except FileNotFoundError:
            run.messages -= 1  # taken by another reader of the same Maildir meanwhile
            continue
        except StoreError:
            raise
        except ImportError_ as err:
            _set_aside(item, run, str(err))
            continue
        except Exception as err:  # one message's failure is that message's
            log.exception("bounces: %s could not be handled", item.where)
            _set_aside(item, run, f"{item.where}: {type(err).__name__}")
            continue
        try:
            item.done()
        except FileNotFoundError:
            continue  # taken by another reader after it was handled here
        except OSError as err:
            # the report is applied; unread, it is read again next time and counted once
            run.not_moved += 1
            note = f"{item.where}: could not be marked as read ({err.strerror or err})"
            log.warning("bounces: %s; it is read again next time, counted once", note)
            run.notes.append(note)
    return run


def _set_aside(item: Incoming, run: BounceRun, reason: str) -> None:
    run.unreadable += 1
    try:
        moved = item.set_aside()
    except OSError as err:
        moved = None
        reason += f" (could not be moved: {err.strerror})"
    log.warning("bounces: unreadable message %s%s", reason,
                f"; set aside as {moved}" if moved else "")
    run.notes.append(reason)


def _apply(store: Store, config: Config, key: bytes, report: Report, run: BounceRun) -> None:
    if report.kind == "none":
        run.not_reports += 1
        return
    if report.row_id is None and report.subscriber_id is None:
        run.unmatched += 1
        log.info("bounces: a %s report names no message of ours (no valid VERP token); "
                 "ignored", report.kind)
        return
    now = now_utc()
    with store.write(durable=report.kind == "complaint") as conn:
        row_id = report.row_id
        if row_id is None:  # a complaint naming only the subscriber (signed link)
            assert report.subscriber_id is not None
            row_id = oq.newest_row_of(conn, report.subscriber_id)
            if row_id is None:
                run.unmatched += 1
                return
        row = oq.get_outbox(conn, row_id)
        if row is None:
            run.unmatched += 1
            return
        sub = sq.get(conn, id=row.subscriber_id) if row.subscriber_id is not None else None
        report = report.about(row.recipient)
        result = oq.mark_bounce(conn, row_id, report.kind, report.detail, now,
                                bounce_limit=config.mail.bounce_limit,
                                suppress_hash=sq.email_hash(sub.email) if sub else None)
    if not result.changed:
        run.repeated += 1
        return
    if report.kind == "hard":
        run.hard += 1
    elif report.kind == "soft":
        run.soft += 1
    else:
        run.complaints += 1
    who = f"subscriber {sub.id} ({mask_address(sub.email)})" if sub else "an erased subscriber"
    log.info("bounces: %s for outbox row %s, %s: %s", report.kind, row_id, who,
             report.detail or "-")
