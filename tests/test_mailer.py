"""The mail transports: the local Maildir (the embedded default) and the SMTP pool."""

from __future__ import annotations

import asyncio
import mailbox
import time
from pathlib import Path

import pytest

from seriesfeed import emails, mailer
from seriesfeed.actions import delivery
from seriesfeed.config import load_config
from seriesfeed.errors import PermanentDeliveryError, TransientDeliveryError
from tests.conftest import ROOT
from tests.smtp_server import SmtpServer

CONFIG = load_config(ROOT / "config.toml", env={})


def _message(to: str = "reader@example.org") -> bytes:
    return emails.message_bytes(emails.build_message(
        sender=emails.sender_address(CONFIG), to_email=to, to_name="Ana López",
        subject="Reflexiones: 2 artículos nuevos", text="Hola\n.\nfin", html="<p>Hola</p>",
        message_id="<t.1@example.org>"))


def test_maildir_is_the_default_and_any_client_can_read_it(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.toml", env={"SERIESFEED_MAIL_MAILDIR":
                                                    str(tmp_path / "md")})
    transport = mailer.make_transport(config)
    assert isinstance(transport, mailer.MaildirTransport)
    asyncio.run(transport.send(_message(), sender="a@example.org",
                               recipients=["reader@example.org"]))
    box = mailbox.Maildir(str(tmp_path / "md"), create=False)
    messages = list(box)
    assert len(messages) == 1
    from email.header import decode_header, make_header

    assert str(make_header(decode_header(messages[0]["Subject"]))) == \
        "Reflexiones: 2 artículos nuevos"
    assert list((tmp_path / "md" / "tmp").iterdir()) == []  # written to tmp, renamed to new


def test_smtp_pool_delivers_reuses_connections_and_translates_replies(
        smtp_server: SmtpServer) -> None:
    smtp_server.recorder.rcpt_replies.update({"hard.example.net": "550 5.1.1 unknown",
                                              "soft.example.net": "451 4.3.0 later"})
    pool = mailer.SmtpPool(host=smtp_server.host, port=smtp_server.port, security="none",
                           connections=2, timeout=5)

    async def run() -> list[object]:
        results: list[object] = []
        for to in ("a@example.org", "gone@hard.example.net", "b@example.org",
                   "busy@soft.example.net", "c@example.org"):
            try:
                results.append(await pool.send(_message(to), sender="d@example.org",
                                               recipients=[to]))
            except (PermanentDeliveryError, TransientDeliveryError) as exc:
                results.append(exc)
        await pool.aclose()
        return results

    results = asyncio.run(run())
    assert isinstance(results[1], PermanentDeliveryError) and results[1].code == 550
    assert isinstance(results[3], TransientDeliveryError) and results[3].code == 451
    # the relay's own words are a field (what classify() reads the RFC 3463 code from)
    assert results[1].reply == "5.1.1 unknown" and results[3].reply == "4.3.0 later"
    assert delivery.classify(results[1])[0] is delivery.Reply.RECIPIENT
    assert delivery.classify(results[3])[0] is delivery.Reply.SYSTEM
    delivered = [m.recipients[0] for m in smtp_server.recorder.messages]
    assert delivered == ["a@example.org", "b@example.org", "c@example.org"]  # RSET after errors
    # sent one after another, so one connection carried all three (and the refusals)
    assert len({m.peer for m in smtp_server.recorder.messages}) == 1


def test_the_pool_keeps_to_its_rate_limit(smtp_server: SmtpServer) -> None:
    pool = mailer.SmtpPool(host=smtp_server.host, port=smtp_server.port, security="none",
                           connections=4, rate=10, timeout=5)

    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(*(pool.send(_message(f"r{n}@example.org"), sender="d@example.org",
                                         recipients=[f"r{n}@example.org"]) for n in range(6)))
        took = time.monotonic() - started
        await pool.aclose()
        return took

    # 6 messages at 10 per second over 4 connections: the last starts 0.5 s after the first
    assert asyncio.run(run()) >= 0.5
    assert len(smtp_server.recorder.messages) == 6


def test_unreachable_relay_is_a_transient_error() -> None:
    from tests.smtp_server import free_port

    pool = mailer.SmtpPool(host="127.0.0.1", port=free_port(), security="none", timeout=2)

    async def run() -> None:
        try:
            await pool.send(_message(), sender="d@example.org", recipients=["x@example.org"])
        finally:
            await pool.aclose()

    with pytest.raises(TransientDeliveryError):
        asyncio.run(run())


# aiosmtpd warns about auth_require_tls=False, which the implicit-TLS server below needs
# (the whole session is TLS there, so the warning does not apply)
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_pool_with_tls_and_auth(tmp_path: Path, security: str) -> None:
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.smtp_server import Recorder, free_port

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"digest" and \
            auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    recorder = Recorder()
    port = free_port()
    options: dict[str, object] = {"authenticator": authenticator, "auth_required": True}
    if security == "starttls":
        options.update(tls_context=server_ctx, require_starttls=True)
    else:  # implicit TLS (port 465 style): the whole session is wrapped from the start
        # (aiosmtpd 1.4 advertises AUTH only after STARTTLS unless told the session is safe)
        options.update(ssl_context=server_ctx, auth_require_tls=False)
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)  # type: ignore[arg-type]
    controller.start()
    try:
        for password, ok in (("wrong", False), ("s3cret", True)):
            pool = mailer.SmtpPool(host="127.0.0.1", port=port, security=security,
                                   username="digest", password=password, timeout=5,
                                   tls_context=client_ctx)

            async def run(p: mailer.SmtpPool = pool) -> None:
                try:
                    await p.send(_message(), sender="d@example.org",
                                 recipients=["reader@example.org"])
                finally:
                    await p.aclose()

            if ok:
                asyncio.run(run())
            else:
                with pytest.raises((PermanentDeliveryError, TransientDeliveryError)):
                    asyncio.run(run())
    finally:
        controller.stop()
    assert [m.recipients for m in recorder.messages] == [["reader@example.org"]]


def test_a_refused_ehlo_keeps_the_relays_words_for_classify(tmp_path: Path) -> None:
    """421 4.7.0 to EHLO on a fresh connection: the error carries the reply text, so the
    RFC 3463 class (policy: the sender's standing, not the recipient) is read from it."""
    from tests.harness.fault_smtp import FaultServer

    server = FaultServer.start(tmp_path / "smtp.jsonl",
                               ehlo_reply="421 4.7.0 too many connections")
    pool = mailer.SmtpPool(host=server.host, port=server.port, security="none",
                           connections=1, timeout=5)

    async def run() -> TransientDeliveryError:
        try:
            with pytest.raises(TransientDeliveryError) as info:
                await pool.send(_message("b@example.org"), sender="a@example.org",
                                recipients=["b@example.org"])
            return info.value
        finally:
            await pool.aclose()

    try:
        exc = asyncio.run(run())
    finally:
        server.stop()
    assert exc.code == 421 and exc.reply == "4.7.0 too many connections"
    assert delivery.classify(exc) == (delivery.Reply.POLICY, "421 4.7.0")
    assert server.handler.events["ehlo 421"] >= 1
