"""A scripted SMTP server on 127.0.0.1 (aiosmtpd) for fault tests.

Replies are scripted per recipient domain and phase (``rcpt``, ``data`` for the reply after
the final dot, ``drop_after_dot``, ``drop_mid_data``), each for the first N attempts of a
recipient or always; ``greeting_failures`` answers the first N connections with 421.  Modes:
``tarpit`` (seconds before each DATA reply), ``no_8bitmime``, ``no_smtputf8`` and ``strict``
(rejects bare CR or LF, lines over 998 octets, and 8-bit data without BODY=8BITMIME).

Every message the server accepts is appended to a JSON-lines log and fsynced *before* the
server answers 250 (or drops the connection after the dot): the log is the truth about what
was delivered, whatever the client believes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import itertools
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.smtp_server import Received, Recorder, free_port

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Rule:
    phase: str  # rcpt | data | drop_after_dot | drop_mid_data
    reply: str = ""
    times: int | None = None  # first N attempts of each recipient; None = always


@dataclass
class Delivery:
    conn: int
    sender: str
    recipients: list[str]
    sha256: str
    message_id: str
    at: float = 0.0


@dataclass
class FaultHandler(Recorder):
    log_path: Path = Path("smtp-log.jsonl")
    rules: dict[str, list[Rule]] = field(default_factory=dict)
    greeting_failures: int = 0
    tarpit: float = 0.0
    strict: bool = False
    no_8bitmime: bool = False
    keep_messages: bool = True
    mail_reply: str | None = None  # the reply to every MAIL FROM (e.g. "530 5.7.0 ...")
    ehlo_reply: str | None = None  # the reply to every EHLO (e.g. "421 4.7.0 ...")
    fsync: bool = True  # False: the "fast sink" of the load tests (still logged, in order)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def _rule(self, phase: str, recipients: list[str]) -> Rule | None:
        for rcpt in recipients:
            for rule in self.rules.get(rcpt.rsplit("@", 1)[-1].lower(), []):
                if rule.phase != phase:
                    continue
                self.attempts[(phase, rcpt)] += 1
                if rule.times is None or self.attempts[(phase, rcpt)] <= rule.times:
                    return rule
        return None

    def take_greeting_failure(self) -> bool:
        with self._lock:
            self.connections += 1
            if self.greeting_failures > 0:
                self.greeting_failures -= 1
                self.events["greeting_421"] += 1
                return True
            return False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        session.host_name = hostname
        if self.ehlo_reply:
            self.events[f"ehlo {self.ehlo_reply[:3]}"] += 1
            return [self.ehlo_reply]
        if self.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        if self.mail_reply:
            self.events[f"mail {self.mail_reply[:3]}"] += 1
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        rule = self._rule("rcpt", [address])
        if rule is not None:
            self.events[f"rcpt {rule.reply[:3]}"] += 1
            if rule.reply.startswith("421"):
                server.transport.close()
            return rule.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _strict_error(self, envelope: Any) -> str | None:
        data: bytes = envelope.original_content
        eight_bit = any(b > 127 for b in data)
        if eight_bit and (self.no_8bitmime or "BODY=8BITMIME" not in
                          [o.upper() for o in envelope.mail_options]):
            return "554 5.6.1 8-bit data without BODY=8BITMIME"
        for line in data.split(b"\r\n"):
            if b"\r" in line or b"\n" in line:
                return "554 5.6.0 bare CR or LF in message data"
            if len(line) > 998:
                return "554 5.6.0 line longer than 998 octets"
        return None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.tarpit:
            await asyncio.sleep(self.tarpit)
        data: bytes = envelope.original_content or envelope.content
        recipients = list(envelope.rcpt_tos)
        if self.strict or self.no_8bitmime:
            problem = self._strict_error(envelope)
            if problem:
                self.events["strict reject"] += 1
                return problem
        if self._rule("drop_mid_data", recipients) is not None:
            self.events["drop_mid_data"] += 1
            server.transport.abort()  # nothing logged: the message was not accepted
            return "451 never seen"
        rule = self._rule("data", recipients)
        if rule is not None:
            self.events[f"data {rule.reply[:3]}"] += 1
            return rule.reply
        self._accept(session, envelope.mail_from, recipients, data)
        if self._rule("drop_after_dot", recipients) is not None:
            self.events["drop_after_dot"] += 1
            server.transport.abort()  # accepted and logged, but the client never hears 250
            return "250 unheard"
        return "250 Message accepted"

    def _accept(self, session: Any, sender: str, recipients: list[str], data: bytes) -> None:
        match = MESSAGE_ID.search(data)
        record = {"at": time.time(), "conn": id(session), "from": sender, "rcpt": recipients,
                  "sha256": hashlib.sha256(data).hexdigest(),
                  "message_id": match.group(1).decode() if match else ""}
        line = (json.dumps(record) + "\n").encode()
        with self._lock:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if self.keep_messages:
                self.messages.append(Received(sender, recipients, data))

    def deliveries(self) -> list[Delivery]:
        if not self.log_path.exists():
            return []
        out = []
        # the server appends while this reads: a line not yet ended by its newline is a
        # write in progress, left for the next read
        text = self.log_path.read_text()
        for raw in text[:text.rfind("\n") + 1].splitlines():
            r = json.loads(raw)
            out.append(Delivery(r["conn"], r["from"], r["rcpt"], r["sha256"], r["message_id"],
                                r.get("at", 0.0)))
        return out

    def wait_for_log(self, count: int, timeout: float = 30) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.deliveries()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.deliveries()


class _FaultSMTP(SMTP):
    async def _handle_client(self) -> None:
        handler = self.event_handler
        if isinstance(handler, FaultHandler) and handler.take_greeting_failure():
            await self.push("421 4.3.2 Service not available, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class FaultController(Controller):
    def factory(self) -> SMTP:
        return _FaultSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class FaultServer:
    host: str
    port: int
    handler: FaultHandler
    controller: FaultController
    smtputf8: bool = True  # offered again after a restart as at the start

    @classmethod
    def start(cls, log_path: Path, *, no_smtputf8: bool = False, port: int | None = None,
              password: str | None = None, **options: Any) -> FaultServer:
        """``password``: offer AUTH (over plain TCP) and accept only that password."""
        handler = FaultHandler(log_path=log_path, **options)
        port = port or free_port()
        auth: dict[str, Any] = {}
        if password is not None:
            from aiosmtpd.smtp import AuthResult

            def check(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
                ok = getattr(data, "password", b"") == password.encode()
                handler.events["auth ok" if ok else "auth refused"] += 1
                return AuthResult(success=ok, handled=False)  # aiosmtpd replies 535

            auth = {"authenticator": check, "auth_require_tls": False}
        controller = FaultController(handler, hostname="127.0.0.1", port=port,
                                     enable_SMTPUTF8=not no_smtputf8, decode_data=False,
                                     **auth)
        controller.start()
        return cls("127.0.0.1", port, handler, controller, smtputf8=not no_smtputf8)

    def stop(self) -> None:
        if self.controller._thread is not None:  # idempotent
            self.controller.stop()

    def restart(self) -> None:
        self.controller = FaultController(self.handler, hostname=self.host, port=self.port,
                                          enable_SMTPUTF8=self.smtputf8, decode_data=False)
        self.controller.start()

    def parsed(self, data: bytes) -> email.message.EmailMessage:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg
