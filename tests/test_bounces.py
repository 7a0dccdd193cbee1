"""Bounces and complaints after the relay's 250: VERP senders, DSNs (RFC 3464 and the common
MTAs' own formats), ARF reports (RFC 5965), from a Maildir, an mbox or single files."""

from __future__ import annotations

import asyncio
import email as email_pkg
import json
import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from sqlalchemy import select

from seriesfeed import actions
from seriesfeed.actions import bounces
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import outbox, subscribers, suppressions
from tests.conftest import SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer

PEOPLE = ("ann@example.org", "bob@example.net", "cai@example.com", "dee@example.org",
          "eve@example.net", "fay@example.com", "gus@example.org")


@dataclass
class World:
    path: Path
    config: Config
    store: Store
    senders: dict[str, str]  # recipient -> the VERP envelope sender of its digest
    messages: dict[str, EmailMessage]


@pytest.fixture
def world(make_config: Callable[..., Path], database_url: str,
          smtp_server: SmtpServer) -> Iterator[World]:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        mail={"from": "Digest <digest@example.org>", "bounce_address": "bounces@example.org",
              "bounce_limit": 1},
        security={"secret_key": "b" * 32})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    for email in PEOPLE:
        actions.subscribers.add_subscriber(store, config, email, frequency="daily", confirmed=True)
    actions.import_entries(store, config, SEED_PAGE)
    asyncio.run(actions.send_digests(store, config, scheduled=False))
    got = smtp_server.recorder.wait_for(len(PEOPLE))
    yield World(path, config, store, {m.recipients[0]: m.sender for m in got},
                {m.recipients[0]: m.message for m in got})
    store.close()


def _state(store: Store) -> tuple[object, ...]:
    with store.read() as conn:
        return (conn.execute(select(subscribers).order_by(subscribers.c.id)).all(),
                conn.execute(select(outbox).order_by(outbox.c.id)).all(),
                conn.execute(select(suppressions)).all())


def _subscriber(store: Store, email: str) -> dict[str, object]:
    with store.read() as conn:
        row = conn.execute(select(subscribers).where(subscribers.c.email == email)).one()
    return dict(row._mapping)


def _row(store: Store, email: str) -> dict[str, object]:
    with store.read() as conn:
        row = conn.execute(select(outbox).where(outbox.c.recipient == email)).one()
    return dict(row._mapping)


def _headers(original: EmailMessage, sender: str) -> str:
    return "".join(f"{k}: {v}\n" for k, v in (
        ("Return-Path", f"<{sender}>"), ("From", original["From"]), ("To", original["To"]),
        ("Subject", original["Subject"]), ("Message-ID", original["Message-ID"])))


def _fields(text: str) -> Message:
    block = Message()
    for line in text.strip().splitlines():
        name, _, value = line.partition(": ")
        block[name] = value
    return block


def _report(report_type: str, headers: dict[str, str],
            parts: list[tuple[str, str | list[Message]]]) -> Message:
    """A multipart/report built with the email package, as an MTA would send it: message/*
    parts carry their blocks (delivery-status, feedback-report) or the returned message."""
    report = MIMEMultipart("report", report_type=report_type)
    for key, value in headers.items():
        report[key] = value
    for ctype, body in parts:
        if isinstance(body, list):
            part = Message()
            part.set_type(ctype)
            part.set_payload(body)
            report.attach(part)
        else:
            report.attach(MIMEText(body, ctype.split("/")[1]))
    return email_pkg.message_from_bytes(report.as_bytes())  # as it arrives: parsed bytes


def rfc3464(sender: str, original: EmailMessage, recipient: str, *, status: str = "5.1.1",
            action: str = "failed", diagnostic: str = "smtp; 550 5.1.1 user unknown",
            mta: str = "mx.example.net") -> Message:
    """A standard DSN (multipart/report; report-type=delivery-status), as Postfix,
    Gmail and Exchange send them, delivered to the VERP address."""
    return _report("delivery-status", {
        "From": f"MAILER-DAEMON@{mta}", "To": sender,
        "Subject": "Undelivered Mail Returned to Sender"}, [
        ("text/plain", "I'm sorry to have to inform you that your message could not\n"
                       f"be delivered to one or more recipients.\n\n<{recipient}>: "
                       f"{diagnostic}\n"),
        ("message/delivery-status", [
            _fields(f"Reporting-MTA: dns; {mta}"),
            _fields(f"Final-Recipient: rfc822; {recipient}\n"
                    f"Original-Recipient: rfc822;{recipient}\nAction: {action}\n"
                    f"Status: {status}\nDiagnostic-Code: {diagnostic}")]),
        ("text/rfc822-headers", _headers(original, sender))])


def arf(original: EmailMessage, sender: str, *, with_return_path: bool = True,
        unsubscribe: str | None = None) -> Message:
    """An ARF complaint report (RFC 5965) with the complained-about message inside."""
    inner = EmailMessage()
    if with_return_path:
        inner["Return-Path"] = f"<{sender}>"
    for key in ("From", "To", "Subject", "Message-ID", "Feedback-ID"):
        inner[key] = str(original[key])
    inner["List-Unsubscribe"] = unsubscribe or str(original["List-Unsubscribe"])
    inner.set_content("the digest\n")
    return _report("feedback-report", {
        "From": "staff@hotmail.example", "To": "abuse@example.org",
        "Subject": "complaint about message from 192.0.2.1"}, [
        ("text/plain", "This is an email abuse report for an email message received "
                       "from IP 192.0.2.1.\n"),
        ("message/feedback-report", [_fields(
            "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1")]),
        ("message/rfc822", [inner])])


def exim_bounce(sender: str, recipient: str) -> Message:
    msg = MIMEText(
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {recipient}\n    SMTP error from remote mail server after RCPT TO:<{recipient}>:\n"
        "    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\n")
    msg["From"] = "Mail Delivery System <Mailer-Daemon@mx.example.com>"
    msg["To"] = sender
    msg["Subject"] = "Mail delivery failed: returning message to sender"
    msg["X-Failed-Recipients"] = recipient
    return msg


def qmail_bounce(sender: str, recipient: str) -> Message:
    msg = MIMEText(
        "Hi. This is the qmail-send program at mx.example.org.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{recipient}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n")
    msg["From"] = "MAILER-DAEMON@mx.example.org"
    msg["Delivered-To"] = sender
    msg["To"] = sender
    msg["Subject"] = "failure notice"
    return msg


def test_each_digest_has_a_signed_verp_sender_and_a_feedback_id_without_the_address(
        world: World) -> None:
    senders = set(world.senders.values())
    assert len(senders) == len(PEOPLE)  # one per outbox row
    for recipient, sender in world.senders.items():
        assert sender.startswith("bounces+") and sender.endswith("@example.org")
        row = _row(world.store, recipient)
        assert bounces.row_from(world.config, b"b" * 32, sender) == row["id"]
        feedback = str(world.messages[recipient]["Feedback-ID"])
        assert feedback.startswith(f"digest{row['digest_id']}:en:digest:")
        assert recipient.split("@")[0] not in feedback and "@" not in feedback


def test_dsn_and_arf_mark_the_right_subscriber_and_a_forged_one_changes_nothing(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    s, m = world.senders, world.messages
    # forged: a token with a wrong MAC, a token naming another row, no token at all
    row_ann = _row(world.store, "ann@example.org")["id"]
    bad_mac = f"bounces+{row_ann}-{'0' * 20}@example.org"
    other = s["bob@example.net"].replace(f"+{_row(world.store, 'bob@example.net')['id']}-",
                                         f"+{row_ann}-")
    forged_dir = tmp_path / "forged"
    forged_dir.mkdir()
    for n, msg in enumerate([rfc3464(bad_mac, m["ann@example.org"], "ann@example.org"),
                             rfc3464(other, m["ann@example.org"], "ann@example.org"),
                             rfc3464("digest@example.org", m["ann@example.org"],
                                     "ann@example.org"),
                             # a genuine unsubscribe link would itself be authority enough
                             # (it unsubscribes whoever holds it): this one is tampered with
                             arf(m["ann@example.org"], bad_mac, unsubscribe=(
                                 "<https://feeds.example.org/unsubscribe/eyJzIjoxfQ.AAAA>")),
                             exim_bounce(bad_mac, "ann@example.org")]):
        (forged_dir / f"{n}.eml").write_bytes(msg.as_bytes())
    before = _state(world.store)
    forged = run_cli("--config", world.path, "bounces", "process", forged_dir)
    assert forged.code == 0, forged
    assert "0 hard bounces" in forged.out and "0 complaints" in forged.out
    assert "not matched to a message we sent" in forged.out
    assert _state(world.store) == before

    # genuine: a DSN (bob), an ARF complaint (cai), a transient DSN (dee), from a Maildir
    box = mailbox.Maildir(tmp_path / "bounces")
    box.add(rfc3464(s["bob@example.net"], m["bob@example.net"], "bob@example.net"))
    box.add(arf(m["cai@example.com"], s["cai@example.com"]))
    box.add(rfc3464(s["dee@example.org"], m["dee@example.org"], "dee@example.org",
                    status="4.2.2", action="delayed", diagnostic="smtp; 452 4.2.2 mailbox full"))
    box.add(MIMEText("just a reply, not a report"))
    done = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces")
    assert done.code == 0, done
    assert done.out.startswith("4 messages: 1 hard bounces, 1 transient, 1 complaints")

    bob = _subscriber(world.store, "bob@example.net")
    assert bob["status"] == "bounced" and bob["hard_bounces"] == 1
    row = _row(world.store, "bob@example.net")
    assert row["state"] == "failed" and row["bounce"] == "hard" and "5.1.1" in row["last_error"]
    cai = _subscriber(world.store, "cai@example.com")
    assert cai["status"] == "unsubscribed" and cai["unsubscribed_at"] is not None
    assert actions.subscribers.add_subscriber(world.store, world.config, "cai@example.com",
                                        resubscribe=True).subscriber is None  # suppressed
    dee = _subscriber(world.store, "dee@example.org")
    assert dee["status"] == "confirmed" and dee["soft_bounces"] == 1
    for email in ("ann@example.org", "eve@example.net"):
        untouched = _subscriber(world.store, email)
        assert untouched["status"] == "confirmed" and untouched["hard_bounces"] == 0

    # the Maildir's messages are marked seen: a second pass reads nothing new; the same
    # reports as files again count nothing twice
    again = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces")
    assert again.out.startswith("0 messages")
    repeat = tmp_path / "repeat.eml"
    repeat.write_bytes(rfc3464(s["bob@example.net"], m["bob@example.net"],
                               "bob@example.net").as_bytes())
    assert "1 already counted" in run_cli("--config", world.path, "bounces", "process",
                                          repeat).out
    assert _subscriber(world.store, "bob@example.net")["hard_bounces"] == 1

    # the operator sees it
    listed = json.loads(run_cli("--config", world.path, "outbox", "list", "--state", "failed",
                                "--json").out)
    assert [r["recipient"] for r in listed] == ["bob@example.net"]


def test_real_world_formats_of_common_mtas_mark_the_right_subscriber(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    s, m = world.senders, world.messages
    samples = {
        # Postfix: RFC 3464 with its own wording
        "ann@example.org": rfc3464(s["ann@example.org"], m["ann@example.org"],
                                   "ann@example.org", mta="mail.example.org",
                                   diagnostic="smtp; 550 5.1.1 <ann@example.org>: Recipient "
                                              "address rejected: User unknown in local "
                                              "recipient table"),
        # Gmail
        "bob@example.net": rfc3464(s["bob@example.net"], m["bob@example.net"],
                                   "bob@example.net", mta="mx.google.com",
                                   diagnostic="smtp; 550-5.1.1 The email account that you "
                                              "tried to reach does not exist."),
        # Microsoft 365 / Exchange
        "cai@example.com": rfc3464(s["cai@example.com"], m["cai@example.com"],
                                   "cai@example.com", status="5.1.10",
                                   mta="DM6PR01MB1234.namprd01.prod.outlook.com",
                                   diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound;"
                                              " Recipient not found by SMTP address lookup"),
        # Exim: plain text with X-Failed-Recipients
        "dee@example.org": exim_bounce(s["dee@example.org"], "dee@example.org"),
        # qmail: QSBMF
        "eve@example.net": qmail_bounce(s["eve@example.net"], "eve@example.net"),
    }
    mbox = mailbox.mbox(tmp_path / "bounces.mbox")
    for msg in samples.values():
        mbox.add(msg)
    mbox.close()
    done = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces.mbox")
    assert done.code == 0, done
    assert done.out.startswith("5 messages: 5 hard bounces"), done.out
    for email in PEOPLE:
        sub = _subscriber(world.store, email)
        expected = "bounced" if email in samples else "confirmed"
        assert sub["status"] == expected, email


def test_a_complaint_without_return_path_is_matched_by_its_signed_unsubscribe_link(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    report = tmp_path / "arf.eml"
    report.write_bytes(arf(world.messages["fay@example.com"], "", with_return_path=False)
                       .as_bytes())
    done = run_cli("--config", world.path, "bounces", "process", report)
    assert "1 complaints" in done.out, done
    assert _subscriber(world.store, "fay@example.com")["status"] == "unsubscribed"
    assert _subscriber(world.store, "gus@example.org")["status"] == "confirmed"


def test_a_successful_delivery_resets_the_hard_bounce_count(
        world: World, smtp_server: SmtpServer) -> None:
    with world.store.write() as conn:
        conn.execute(subscribers.update().where(subscribers.c.email == "gus@example.org")
                     .values(hard_bounces=2, last_seq=0))
    # a second digest (a manual send after the slot's records <slot>+<seq>) reaches gus
    asyncio.run(actions.send_digests(world.store, world.config, scheduled=False))
    assert _subscriber(world.store, "gus@example.org")["hard_bounces"] == 0


def test_bounces_process_refuses_a_missing_path(world: World, tmp_path: Path,
                                                run_cli: Callable[..., CliResult]) -> None:
    missing = run_cli("--config", world.path, "bounces", "process", tmp_path / "nope")
    assert missing.code == 1 and missing.err.startswith("Error: ") and "PATH" in missing.err


def test_the_daemon_watches_a_maildir_for_bounces(world: World, tmp_path: Path) -> None:
    import dataclasses

    from seriesfeed.daemon import build_daemon

    folder = tmp_path / "incoming"
    config = dataclasses.replace(world.config, mail=dataclasses.replace(
        world.config.mail, bounce_maildir=str(folder)))
    job = next(j for j in build_daemon(config, world.store, serve_web=False).jobs
               if j.name == "bounces")
    assert job.interval == config.schedule.bounces_seconds and job.record
    assert "not a Maildir" in asyncio.run(job.run(asyncio.Event()))
    box = mailbox.Maildir(folder)
    box.add(nested_multipart(3000))  # unreadable: set aside, and the watch reads on
    box.add(rfc3464(world.senders["ann@example.org"], world.messages["ann@example.org"],
                    "ann@example.org"))
    summary = asyncio.run(job.run(asyncio.Event()))
    assert summary.startswith("2 messages: 1 hard bounces") and "1 unreadable" in summary
    assert _subscriber(world.store, "ann@example.org")["status"] == "bounced"
    assert asyncio.run(job.run(asyncio.Event())).startswith("0 messages")
    assert all(j.name != "bounces" for j in build_daemon(world.config, world.store,
                                                         serve_web=False).jobs)


def exim_delay_warning(sender: str, recipient: str) -> Message:
    """Exim's plain-text delay warning: a 451 greylisting reply quoted in the body, no DSN
    fields (flufl.bounce's heuristics read the quoted RCPT error as a permanent failure)."""
    msg = MIMEText(
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mx.example.com.\n\n"
        "The message identifier is:     1pQrSt-0001Ab-Cd\n\n"
        "The address to which the message has not yet been delivered is:\n\n"
        f"  {recipient}\n    host mx.example.org [192.0.2.5]\n"
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\n"
        "    451 4.7.1 Greylisted, please try again later\n\n"
        "No action is required on your part. Delivery attempts will continue for\n"
        "some time, and this warning may be repeated at intervals if the message\n"
        "remains undelivered.\n")
    msg["From"] = "Mail Delivery System <Mailer-Daemon@mx.example.com>"
    msg["To"] = sender
    msg["Subject"] = "Warning: message 1pQrSt-0001Ab-Cd delayed 24 hours"
    return msg


def gmail_delay_notice(sender: str, recipient: str) -> Message:
    msg = MIMEText(
        "This is an automatically generated Delivery Status Notification\n\n"
        "THIS IS A WARNING MESSAGE ONLY.\n\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
        f"Delivery to the following recipient has been delayed:\n\n     {recipient}\n\n"
        "The recipient server did not accept our requests to connect. Message will be "
        "retried for 2 more day(s).\n"
        f"Final-Recipient: {recipient}\n550 5.1.1 <{recipient}> was quoted here\n")
    msg["From"] = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
    msg["To"] = sender
    msg["Subject"] = "Delivery Status Notification (Delay)"
    return msg


@pytest.mark.parametrize("warning", [exim_delay_warning, gmail_delay_notice])
def test_a_delay_warning_is_transient_never_a_hard_bounce(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult],
        warning: Callable[[str, str], Message]) -> None:
    report = tmp_path / "warning.eml"
    report.write_bytes(warning(world.senders["dee@example.org"], "dee@example.org").as_bytes())
    done = run_cli("--config", world.path, "bounces", "process", report)
    assert done.code == 0, done
    assert done.out.startswith("1 messages: 0 hard bounces, 1 transient"), done.out
    dee = _subscriber(world.store, "dee@example.org")
    assert dee["status"] == "confirmed" and dee["hard_bounces"] == 0 and dee["soft_bounces"] == 1
    assert _row(world.store, "dee@example.org")["state"] == "sent"


@pytest.mark.parametrize(("action", "status", "verdict"), [
    ("failed", "4.4.7", "soft"),       # gave up after a transient condition: address not bad
    ("delayed", "5.0.0", "soft"),      # not final: the MTA is still trying
    ("delivered", "2.0.0", "none"),    # a success notice is no bounce
    ("relayed", "2.0.0", "none"),
    ("expanded", "2.0.0", "none"),
    ("failed", "5.1.1", "hard"),
])
def test_a_dsn_is_judged_by_its_own_action_and_status(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult],
        action: str, status: str, verdict: str) -> None:
    report = tmp_path / "dsn.eml"
    report.write_bytes(rfc3464(world.senders["eve@example.net"], world.messages["eve@example.net"],
                               "eve@example.net", action=action, status=status,
                               diagnostic=f"smtp; {status[0]}50 {status} said").as_bytes())
    done = run_cli("--config", world.path, "bounces", "process", report)
    assert done.code == 0, done
    expected = {"hard": "1 hard bounces, 0 transient", "soft": "0 hard bounces, 1 transient",
                "none": "0 hard bounces, 0 transient"}[verdict]
    assert done.out.startswith(f"1 messages: {expected}"), done.out
    eve = _subscriber(world.store, "eve@example.net")
    assert eve["hard_bounces"] == (1 if verdict == "hard" else 0)
    assert eve["soft_bounces"] == (1 if verdict == "soft" else 0)


def nested_multipart(depth: int) -> bytes:
    """A message whose parts nest ``depth`` deep (about 65 bytes a level)."""
    head = "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'
                      for i in range(depth))
    closing = "".join(f"\n--b{i}--\n" for i in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\n\nx\n" + closing).encode()


def test_an_unreadable_message_is_set_aside_and_the_rest_are_read(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult]) -> None:
    bomb = nested_multipart(3000)
    assert len(bomb) > 190_000
    box = mailbox.Maildir(tmp_path / "bounces")
    bad_key = box.add(bomb)
    box.add(rfc3464(world.senders["bob@example.net"], world.messages["bob@example.net"],
                    "bob@example.net"))
    mbox = mailbox.mbox(tmp_path / "bounces.mbox")
    mbox.add(bomb)
    mbox.add(rfc3464(world.senders["cai@example.com"], world.messages["cai@example.com"],
                     "cai@example.com"))
    mbox.close()

    done = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces")
    assert done.code == 0, done
    assert done.out.startswith("2 messages: 1 hard bounces"), done.out
    assert "1 unreadable" in done.out
    assert _subscriber(world.store, "bob@example.net")["status"] == "bounced"
    aside = tmp_path / "bounces" / ".seriesfeed-unreadable" / "new"
    assert [p.read_bytes() for p in aside.iterdir()] == [bomb]
    assert bad_key not in mailbox.Maildir(tmp_path / "bounces")
    assert run_cli("--config", world.path, "bounces", "process",
                   tmp_path / "bounces").out.startswith("0 messages")

    from_mbox = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces.mbox")
    assert from_mbox.code == 0, from_mbox
    assert from_mbox.out.startswith("2 messages: 1 hard bounces") and "1 unreadable" in \
        from_mbox.out, from_mbox.out
    assert _subscriber(world.store, "cai@example.com")["status"] == "bounced"


# -- findings of the bounce corpus (tests/corpora/test_bounce_corpus.py), each in small ---

@pytest.fixture
def reading(make_config: Callable[..., Path]) -> tuple[Config, bytes]:
    """A config to read reports with (no store: reading changes nothing)."""
    path = make_config(mail={"from": "digest@example.org",
                             "bounce_address": "bounces@example.org"},
                       security={"secret_key": "r" * 32})
    return load_config(path, env={}), b"r" * 32


def _text_report(headers: dict[str, str], body: str) -> Message:
    msg = MIMEText(body)
    for name, value in headers.items():
        msg[name] = value
    return email_pkg.message_from_bytes(msg.as_bytes())


def test_a_dsn_whose_status_is_an_smtp_reply_and_action_failure_is_permanent(
        reading: tuple[Config, bytes]) -> None:
    # seen in the wild (flufl.bounce's dsn_03): "Action: failure", "Status: 553 <text>"
    report = _report("delivery-status", {"From": "postmaster@example.be",
                                         "Subject": "Delivery failure"}, [
        ("text/plain", "Your message could not be delivered.\n"),
        ("message/delivery-status", [
            _fields("Reporting-MTA: dns;pigeon.example.be"),
            _fields("Final-Recipient: rfc822;userx@example.be\nAction: failure\n"
                    "Status: 553 Exceeded maximum inbound message size")])])
    got = bounces.read_report(*reading, report)
    assert got.kind == "hard" and "553" in got.detail


def test_a_phone_number_in_a_bounce_is_not_read_as_a_temporary_reply(
        reading: tuple[Config, bytes]) -> None:
    # flufl.bounce's qmail_07: a support line "480-624-2500" under a permanent qmail failure
    report = _text_report({"From": "MAILER-DAEMON@mx.example.net", "Subject": "failure notice"},
                          "Hi. This is the qmail-send program at mx.example.net.\n"
                          "I'm afraid I wasn't able to deliver your message to the following "
                          "addresses.\nThis is a permanent error; I've given up. Sorry it "
                          "didn't work out.\n\n<user@example.net>:\nThis account is not "
                          "available. Call Customer Support at 480-624-2500.\n\n"
                          "--- Below this line is a copy of the message.\n")
    assert bounces.read_report(*reading, report).kind == "hard"


def test_a_bounce_with_an_encoded_subject_is_not_passed_over() -> None:
    from seriesfeed.mailsource import could_be_report
    # flufl.bounce's simple_22: a gateway's warning, known only by its RFC 2047 subject
    head = (b"From: Symantec_AntiVirus_for_SMTP_Gateways@csri.example\n"
            b"Subject: =?utf-8?B?RGVsaXZlcnkgZmFpbHVyZSBub3RpZmljYXRpb24=?=\n\n")
    assert could_be_report(head)
    assert not could_be_report(b"From: ann@example.org\nSubject: =?utf-8?B?SGVsbG8=?=\n\n")


def test_a_report_without_from_is_still_read_by_the_detectors_after_yale(
        reading: tuple[Config, bytes], capsys: pytest.CaptureFixture[str]) -> None:
    # flufl.bounce's Yale detector raises IndexError on a message without From, which ended
    # the scan (and printed flufl's traceback) before SimpleMatch could find the recipient
    report = _text_report({"Subject": "Returned mail: User unknown"},
                          "Here is your list of failed recipients:\n\n<userx@example.fr>\n")
    del report["From"]
    got = bounces.read_report(*reading, report)
    assert got.kind == "hard", got
    assert "Traceback" not in capsys.readouterr().err


def test_a_message_is_parsed_only_within_its_caps() -> None:
    from seriesfeed.errors import ImportError_
    from seriesfeed.mailsource import MAX_MESSAGE, MAX_NESTING, MAX_PARTS, parse_bounded

    deepest = parse_bounded(nested_multipart(MAX_NESTING), "deep.eml")
    assert len(list(deepest.walk())) == MAX_NESTING + 1  # at the cap: read, and walked
    many = ("Content-Type: multipart/mixed; boundary=b\n\n" +
            "--b\nContent-Type: text/plain\n\nx\n" * MAX_PARTS + "--b--\n").encode()
    huge = b"Subject: x\n\n" + b"a" * MAX_MESSAGE
    for data, reason in ((nested_multipart(MAX_NESTING + 1), "nested MIME parts"),
                         (many, "MIME parts"), (huge, "larger than 10 MB")):
        with pytest.raises(ImportError_) as refused:
            parse_bounded(data, "in/new/1")
        assert str(refused.value).startswith("in/new/1: ") and reason in str(refused.value)


@pytest.mark.parametrize(("head", "may_be_report"), [
    (b"Return-Path: <>\nFrom: someone@example.net\nSubject: hi\n\n", True),
    (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nSubject: x\n\n", True),
    (b"From: postmaster@example.net\n\n", True),
    (b"Content-Type: multipart/report;\n report-type=delivery-status; boundary=x\n\n", True),
    (b"X-Failed-Recipients: ann@example.org\n\n", True),
    (b"From: it@example.net\nSubject: Undeliverable: Digest\n\n", True),
    (b"From: staff@hotmail.example\nSubject: complaint about message from 192.0.2.1\n\n", True),
    (b"From: Ann <ann@example.org>\nReturn-Path: <ann@example.org>\nSubject: Re: part 3\n"
     b"Content-Type: multipart/alternative; boundary=x\n\n", False),
    (b"From: postmaster-fan@example.org\nSubject: lunch\n\n", False),
])
def test_the_header_check_passes_over_only_mail_that_cannot_be_a_report(
        head: bytes, may_be_report: bool) -> None:
    from seriesfeed.mailsource import could_be_report
    assert could_be_report(head) is may_be_report


def test_a_report_that_cannot_be_moved_after_it_was_applied_is_that_messages_problem(
        world: World, tmp_path: Path, run_cli: Callable[..., CliResult],
        caplog: pytest.LogCaptureFixture) -> None:
    """Moving a handled message to cur/ can fail (a full disk, a name taken by a folder):
    the report was applied, the run goes on to the next message, and the failure is one
    counted, logged line, not a traceback."""
    box = mailbox.Maildir(tmp_path / "bounces")
    stuck = box.add(rfc3464(world.senders["bob@example.net"], world.messages["bob@example.net"],
                            "bob@example.net"))
    box.add(rfc3464(world.senders["cai@example.com"], world.messages["cai@example.com"],
                    "cai@example.com"))
    (tmp_path / "bounces" / "cur" / f"{stuck}:2,S").mkdir()  # where it would be moved

    with caplog.at_level("WARNING", logger="seriesfeed"):
        done = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces")
    assert done.code == 0 and "Traceback" not in done.err, done
    assert done.out.startswith("2 messages: 2 hard bounces"), done.out
    assert "1 not moved" in done.out, done.out
    moved = [r.getMessage() for r in caplog.records if "marked as read" in r.getMessage()]
    assert len(moved) == 1 and stuck in moved[0], moved
    assert _subscriber(world.store, "bob@example.net")["status"] == "bounced"
    assert _subscriber(world.store, "cai@example.com")["status"] == "bounced"
    # left unread, it is read again next time and counted once
    again = run_cli("--config", world.path, "bounces", "process", tmp_path / "bounces")
    assert again.code == 0 and again.out.startswith("1 messages: 0 hard bounces"), again.out
    assert "1 already counted" in again.out, again.out
