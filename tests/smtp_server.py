"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records every message it accepts.

Registered once as a pytest plugin (tests/conftest.py ``pytest_plugins``): any test asks for
the ``smtp_server`` fixture by name, no import needed. The server binds port 0 and the port
is read back from its own socket, so no other process can take it in between."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    peer: tuple[str, int] | None = None  # the client's address: one per SMTP connection

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    messages: list[Received] = field(default_factory=list)
    # recipient domain -> SMTP reply for RCPT (e.g. {"hard.test": "550 5.1.1 no such user"})
    rcpt_replies: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        reply = self.rcpt_replies.get(address.rsplit("@", 1)[-1])
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or envelope.content,
                                      tuple(session.peer) if session.peer else None))
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BoundController(Controller):  # type: ignore[misc]
    """aiosmtpd's Controller on port 0: the port the kernel gave is read back from the
    listening socket before the readiness check connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


def start_smtp(recorder: Recorder | None = None) -> tuple[BoundController, SmtpServer]:
    recorder = recorder or Recorder()
    controller = BoundController(recorder, hostname="127.0.0.1", port=0)
    controller.start()
    return controller, SmtpServer("127.0.0.1", int(controller.port), recorder)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    controller, server = start_smtp()
    try:
        yield server
    finally:
        controller.stop()
