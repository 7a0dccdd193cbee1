"""The Transport contract, one suite over every implementation: the Maildir and the SMTP pool
(against a real aiosmtpd on 127.0.0.1, bound to port 0 and its port read back).

What any transport promises the outbox: ``send`` hands the message on intact and returns a
non-empty receipt; concurrent sends all arrive, once each; ``aclose`` may be called twice and
the transport sends again afterwards; a failure is a DeliveryError (never a bare OSError or
SMTP exception), so the outbox can decide between retry and failure."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seriesfeed.errors import DeliveryError
from seriesfeed.mailer import MaildirTransport, SmtpPool, Transport
from tests.smtp_server import SmtpServer, start_smtp

SENDER = "digest@example.org"


def message(n: int, subject: str = "Hello") -> bytes:
    return (f"From: {SENDER}\r\nTo: reader{n}@example.org\r\nSubject: {subject} {n}\r\n"
            f"Message-ID: <contract.{n}@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"  # 7-bit, as emails.to_bytes
            f"\r\nL=C3=ADnea uno del mensaje {n}.\r\nLine two.\r\n").encode("ascii")


@dataclass
class Backend:
    """A transport and a way to read back what it delivered (as CRLF bytes, by Message-ID)."""

    make: Callable[[], Transport]
    delivered: Callable[[], dict[str, bytes]]
    break_it: Callable[[], None]  # after this, sends must fail with a DeliveryError


def _by_message_id(raw: list[bytes]) -> dict[str, bytes]:
    out = {}
    for data in raw:
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        out[str(parsed["Message-ID"])] = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return out


@pytest.fixture(params=["maildir", "smtp"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "maildir":
        box = tmp_path / "Maildir"

        def delivered() -> dict[str, bytes]:
            if not (box / "new").is_dir():
                return {}
            return _by_message_id([p.read_bytes() for p in sorted((box / "new").glob("*"))])

        def break_maildir() -> None:
            box.write_text("a file where the Maildir should be\n")  # (root ignores modes)

        yield Backend(lambda: MaildirTransport(box), delivered, break_maildir)
        return
    controller, server = start_smtp()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            controller.stop()
            stopped = True

    def delivered_smtp() -> dict[str, bytes]:
        return _by_message_id([m.data for m in server.recorder.messages])

    try:
        yield Backend(lambda: _pool(server), delivered_smtp, stop)
    finally:
        stop()


def _pool(server: SmtpServer) -> SmtpPool:
    return SmtpPool(host=server.host, port=server.port, security="none", connections=2,
                    timeout=5)


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_a_message_arrives_intact_with_a_receipt(backend: Backend) -> None:
    async def go() -> str:
        transport = backend.make()
        try:
            return await transport.send(message(1), sender=SENDER,
                                        recipients=["reader1@example.org"])
        finally:
            await transport.aclose()

    receipt = _run(go())
    assert isinstance(receipt, str) and receipt.strip()
    got = backend.delivered()
    assert list(got) == ["<contract.1@example.org>"]
    body = got["<contract.1@example.org>"]
    assert b"L=C3=ADnea uno del mensaje 1." in body  # the bytes as sent
    parsed = email.message_from_bytes(body, policy=email.policy.default)
    assert "Línea uno del mensaje 1." in parsed.get_content()
    assert body.endswith(b"Line two.\r\n")


def test_concurrent_sends_all_arrive_once(backend: Backend) -> None:
    async def go() -> list[str]:
        transport = backend.make()
        try:
            return list(await asyncio.gather(*(
                transport.send(message(n), sender=SENDER,
                               recipients=[f"reader{n}@example.org"]) for n in range(12))))
        finally:
            await transport.aclose()

    receipts = _run(go())
    assert len(receipts) == 12 and all(receipts)  # type: ignore[arg-type]
    got = backend.delivered()
    assert sorted(got) == sorted(f"<contract.{n}@example.org>" for n in range(12))


def test_close_twice_then_send_again(backend: Backend) -> None:
    async def go() -> None:
        transport = backend.make()
        await transport.send(message(1), sender=SENDER, recipients=["reader1@example.org"])
        await transport.aclose()
        await transport.aclose()
        await transport.send(message(2), sender=SENDER, recipients=["reader2@example.org"])
        await transport.aclose()

    _run(go())
    assert sorted(backend.delivered()) == ["<contract.1@example.org>",
                                           "<contract.2@example.org>"]


def test_a_broken_destination_is_a_delivery_error(backend: Backend) -> None:
    backend.break_it()

    async def go() -> None:
        transport = backend.make()
        try:
            await transport.send(message(1), sender=SENDER, recipients=["reader1@example.org"])
        finally:
            await transport.aclose()

    with pytest.raises(DeliveryError):
        _run(go())
    assert "<contract.1@example.org>" not in backend.delivered()
