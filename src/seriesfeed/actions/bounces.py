"""Bounces and complaints that arrive after the relay said 250.

Each digest goes out with a VERP envelope sender, ``bounces+<row>-<mac>@domain`` (from
``[mail] bounce_address``), the MAC an HMAC of the outbox row's number under the secret
key, so a report names exactly one message and cannot be forged. Reports are read from a
Maildir, an mbox or single files: delivery status notifications (RFC 3464, plus the
non-standard formats of common MTAs, through flufl.bounce, the only module importing it)
and feedback reports (ARF, RFC 5965). A permanent failure fails the row and counts a hard
bounce on the subscriber (bounced at ``[mail] bounce_limit``); a transient one is counted;
a complaint unsubscribes and suppresses the address at once. Mail without a valid token
changes nothing.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from flufl.bounce import all_failures

from seriesfeed import tokens
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ValidationError
from seriesfeed.logs import mask_address
from seriesfeed.store import Store
from seriesfeed.store import ops as oq
from seriesfeed.store import subscribers as sq

__all__ = [
    "ENVELOPE_HEADERS",
    "MAC_HEX",
    "MAX_MESSAGE",
    "BounceRun",
    "Report",
    "envelope_sender",
    "process",
    "read_report",
    "row_from",
]

log = logging.getLogger("seriesfeed.bounces")  # the logger's name operators filter on: kept
MAC_HEX = 20  # 80 bits; lower-case hex survives MTAs that fold the local part's case
MAX_MESSAGE = 10 * 1024 * 1024


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
class Report:
    kind: str  # hard, soft, complaint, or none (not a failure report)
    detail: str
    row_id: int | None
    subscriber_id: int | None = None  # a complaint that names only the subscriber


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


def _status_fields(msg: Message) -> tuple[str, str]:
    """Status and Diagnostic-Code of the first failed recipient of a DSN."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:] or blocks:
            if isinstance(block, Message) and block.get("Status"):
                return str(block.get("Status", "")).strip(), \
                    " ".join(str(block.get("Diagnostic-Code", "")).split())[:300]
    return "", ""


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
    status, diagnostic = _status_fields(msg)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a heuristic detector choking is no failure report
        temporary, permanent = frozenset(), frozenset()
    detail = " ".join(p for p in (status, diagnostic) if p) or \
        ", ".join(sorted(a.decode("utf-8", "replace") for a in permanent | temporary))
    if permanent or status.startswith("5"):
        return Report("hard", detail or "permanent failure", row)
    if temporary or status.startswith("4"):
        return Report("soft", detail or "transient failure", row)
    return Report("none", detail, row)


# -- sources of messages --------------------------------------------------------------------

def _parse(data: bytes) -> Message:
    return email.message_from_bytes(data[:MAX_MESSAGE], policy=email.policy.compat32)


def _messages(path: Path) -> Iterator[tuple[Message, mailbox.Maildir | None, str | None]]:
    if path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir():
        md = mailbox.Maildir(path, factory=None, create=False)
        for key in list(md.keys()):
            item = md.get_message(key)
            if "S" in item.get_flags():
                continue  # processed before
            yield _parse(item.as_bytes()), md, key
    elif path.is_dir():
        for child in sorted(p for p in path.iterdir() if p.is_file()):
            yield _parse(child.read_bytes()), None, None
    else:
        with path.open("rb") as fh:
            head = fh.read(5)
        if head == b"From ":
            box = mailbox.mbox(path, create=False)
            try:
                for entry in box:
                    yield _parse(entry.as_bytes()), None, None
            finally:
                box.close()
        else:
            yield _parse(path.read_bytes()), None, None


def _mark_seen(md: mailbox.Maildir, key: str) -> None:
    item = md.get_message(key)
    item.set_subdir("cur")
    item.add_flag("S")
    md[key] = item


@dataclass
class BounceRun:
    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    unmatched: int = 0  # a failure report with no valid token: nothing changed
    not_reports: int = 0
    repeated: int = 0  # a report already counted
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.messages} messages: {self.hard} hard bounces, {self.soft} transient, "
                f"{self.complaints} complaints, {self.repeated} already counted, "
                f"{self.unmatched} not matched to a message we sent, {self.not_reports} "
                "not bounce or complaint reports")


def process(store: Store, config: Config, path: Path) -> BounceRun:
    """Read every report under ``path`` and apply what each says (one transaction each)."""
    if not path.exists():
        raise ValidationError(f"no such file or folder: {path}", field="PATH")
    key = tokens.ensure_secret_key(config)
    run = BounceRun()
    for msg, md, md_key in _messages(path):
        run.messages += 1
        _apply(store, config, key, read_report(config, key, msg), run)
        if md is not None and md_key is not None:
            _mark_seen(md, md_key)
    return run


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
