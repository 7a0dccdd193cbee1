"""Mail transports: a pool of reused SMTP connections (aiosmtplib) or a local Maildir.

Both implement :class:`Transport`. SMTP failures are translated here, where they enter:
a failure to connect, to start TLS, to log in or at MAIL FROM is the sender's problem and
becomes :class:`RelayError` (never a bounce: RELIABILITY invariant 11); 4xx, timeouts and
dropped connections become :class:`TransientDeliveryError` (``uncertain`` when the
connection broke during DATA, after which the server may have accepted the message); a
5xx for a recipient or its message becomes :class:`PermanentDeliveryError`. An address
with a non-ASCII local part goes out with SMTPUTF8 when the relay offers it, and fails
alone otherwise. After any error the connection is reset (RSET) or dropped, never reused
dirty (RELIABILITY invariant 3).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from itertools import count
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib

from seriesfeed.config import Config
from seriesfeed.emails import DkimSigner, Wire, dkim_signer, message_bytes, sender_address
from seriesfeed.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RelayError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from seriesfeed.qp import crlf_only

__all__ = [
    "MaildirTransport", "SigningTransport", "SmtpPool", "Transport", "envelope_sender",
    "make_transport", "send_message", "send_now", "wire_body",
]


class Transport(Protocol):
    """Where messages go. ``send`` returns the server's reply (or the Maildir file name).
    A failure is a ``DeliveryError``; one that carries a reply ``code`` also carries the
    server's reply text in ``reply``: the sender classes the failure by the RFC 3463
    enhanced code in that text (recipient, policy or system), never from the message."""

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str: ...

    async def aclose(self) -> None: ...


# -- Maildir ----------------------------------------------------------------------------

_seq = count()


class MaildirTransport:
    """Delivers into a Maildir (``tmp/`` -> fsync -> rename into ``new/``), readable by any
    mail client. Line endings are stored as LF, the Maildir convention."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _deliver(self, message: bytes) -> str:
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(_seq)}.{socket.gethostname()}"
        tmp = self.path / "tmp" / name
        data = message.replace(b"\r\n", b"\n")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path / "new" / name)
        return name

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        try:
            return await asyncio.to_thread(self._deliver, message)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write to the Maildir {self.path}: {exc}") \
                from exc

    async def aclose(self) -> None:
        return None


# -- SMTP -------------------------------------------------------------------------------

class _RateLimiter:
    """At most ``rate`` sends per second over the whole pool (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            delay = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class SmtpPool:
    """``connections`` SMTP sessions, each reused for many messages."""

    def __init__(self, *, host: str, port: int, security: str = "starttls",
                 username: str = "", password: str = "", connections: int = 4,
                 rate: float = 0.0, timeout: float = 30.0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self.tls_context = tls_context
        self.size = connections
        self.idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.Queue()
        for _ in range(connections):
            self.idle.put_nowait(None)  # connected lazily
        self.limiter = _RateLimiter(rate)
        self.last_error: str | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
        )
        protocol = None
        try:
            await client.connect()
            protocol = client.protocol  # a refused AUTH closes the client and forgets it
            if self.username:
                await client.login(self.username, self.password)
        except BaseException:
            # a failed STARTTLS or AUTH must not leave the socket open
            await _closed(client, protocol)
            raise
        return client

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        await self.limiter.wait()
        client = await self.idle.get()
        keep: aiosmtplib.SMTP | None = None
        try:
            if client is None or not client.is_connected:
                client = await self._connect_or_relay_error()
            reply = await _transaction(client, message, sender, recipients)
            keep = client
            self.last_error = None
            return reply
        except DeliveryError as exc:
            self.last_error = str(exc)
            if isinstance(exc, UncertainDeliveryError):
                await _drop(client)
            else:
                keep = await _reset_or_drop(client)
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            await _drop(client)
            code = getattr(exc, "code", None)
            if isinstance(code, int) and 500 <= code < 600:
                raise PermanentDeliveryError(f"{self.host}: {exc}", code=code,
                                             reply=getattr(exc, "message", None)) from exc
            raise TransientDeliveryError(f"{self.host}:{self.port}: {exc}",
                                         code=code if isinstance(code, int) else None,
                                         reply=getattr(exc, "message", None)) from exc
        finally:
            if client is not None and client is not keep:
                client.close()  # idempotent; covers cancellation mid-transaction too
            self.idle.put_nowait(keep)

    async def _connect_or_relay_error(self) -> aiosmtplib.SMTP:
        """A connected (and logged-in) client; any failure here is the relay's or the
        configuration's, never a recipient's."""
        try:
            return await self._connect()
        except aiosmtplib.SMTPResponseException as exc:
            phase = "AUTH" if isinstance(exc, aiosmtplib.SMTPAuthenticationError) else "connect"
            raise RelayError(f"{self.host}:{self.port}: {phase}: {exc.code} {exc.message}",
                             code=exc.code, reply=exc.message) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            raise RelayError(f"{self.host}:{self.port}: cannot connect: {exc}") from exc

    async def aclose(self) -> None:
        while not self.idle.empty():
            client = self.idle.get_nowait()
            await _drop(client)
        for _ in range(self.size):
            self.idle.put_nowait(None)


def _raise_for_reply(exc: aiosmtplib.SMTPResponseException, recipient: str | None,
                     phase: str) -> DeliveryError:
    message = f"{phase}: {exc.code} {exc.message}".strip()
    if 400 <= exc.code < 500:
        return TransientDeliveryError(message, code=exc.code, recipient=recipient,
                                      reply=exc.message)
    return PermanentDeliveryError(message, code=exc.code, recipient=recipient,
                                  reply=exc.message)


def _needs_smtputf8(sender: str, recipients: Sequence[str]) -> bool:
    return not sender.isascii() or not all(r.isascii() for r in recipients)


async def _transaction(client: aiosmtplib.SMTP, message: bytes, sender: str,
                       recipients: Sequence[str]) -> str:
    """MAIL, RCPT, DATA step by step, so a failure is known to be before or after DATA."""
    options: list[str] = []
    encoding = "ascii"
    if client.is_ehlo_or_helo_needed:
        # aiosmtplib says EHLO lazily (inside MAIL), and STARTTLS forgets the extensions:
        # without this a fresh connection would not know SMTPUTF8 or 8BITMIME yet
        await client.ehlo()
    if _needs_smtputf8(sender, recipients):
        # RFC 6531: an internationalised mailbox needs the relay's SMTPUTF8; without it
        # this one message cannot go out, which says nothing against the relay or the rest
        if not client.supports_extension("smtputf8"):
            who = next((r for r in recipients if not r.isascii()), sender)
            raise PermanentDeliveryError(
                f"{who}: the relay does not offer SMTPUTF8, which this internationalised "
                "address needs", recipient=who)
        options.append("SMTPUTF8")
        encoding = "utf-8"
    if not message.isascii():
        if not client.supports_extension("8bitmime"):
            raise PermanentDeliveryError("the message has 8-bit headers and the relay does not "
                                         "offer 8BITMIME", recipient=recipients[0])
        options.append("BODY=8BITMIME")
    try:
        await client.mail(sender, options=options, encoding=encoding)
    except aiosmtplib.SMTPResponseException as exc:
        raise RelayError(f"MAIL FROM: {exc.code} {exc.message}".strip(), code=exc.code,
                         reply=exc.message) \
            from exc
    for rcpt in recipients:
        try:
            await client.rcpt(rcpt, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            raise _raise_for_reply(exc, rcpt, "RCPT TO") from exc
    try:
        response = await _data(client, message)
    except aiosmtplib.SMTPServerDisconnected as exc:
        raise UncertainDeliveryError(f"connection lost during DATA: {exc}") from exc
    except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
        raise UncertainDeliveryError(f"timeout during DATA: {exc}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _raise_for_reply(exc, recipients[0] if recipients else None, "DATA") from exc
    return f"{response.code} {response.message}"


def wire_body(message: bytes) -> bytes | None:
    """``message`` as DATA sends it (dot-stuffed, ending in CRLF, then ``.`` CRLF), or None
    when it has a bare CR or LF (then aiosmtplib's own normalising is needed). Our messages
    are built with CRLF line endings (policy SMTP), which two passes at C speed prove, and
    dot-stuffing is one ``bytes.replace``: no regular expression runs over the body.
    CRLF pairs never overlap, so every CR and LF is in one exactly when the CRs and LFs
    number twice the pairs; deleting them (``translate``) and counting the pairs costs
    half of counting CR, LF and CRLF one by one (``count`` of one byte is not memchr)."""
    if type(message) is Wire:  # proven CRLF-only and ending in CRLF as it was built
        return (message if message.stuffed is None else message.stuffed) + b".\r\n"
    if not crlf_only(message):
        return None
    body = (b"." + message if message.startswith(b".") else message).replace(b"\r\n.",
                                                                           b"\r\n..")
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


async def _data(client: aiosmtplib.SMTP, message: bytes) -> aiosmtplib.SMTPResponse:
    """DATA with the body written as built. ``SMTP.data`` runs two regular expressions over
    every message (line endings, then dot-stuffing): over half of aiosmtplib's CPU for a
    20 KB digest. Here DATA goes by ``execute_command`` and the body by the protocol's
    ``write``/``read_response`` (its public methods), failing exactly as ``data`` does."""
    body = wire_body(message)
    if body is None or client.protocol is None:
        return await client.data(message)
    start = await client.execute_command(b"DATA")
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:  # the server hung up on DATA
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(body)
        response = await protocol.read_response(timeout=client.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()  # as data() does: the session is out of step
        raise
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


async def _reset_or_drop(client: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
    if client is None or not client.is_connected:
        return None
    try:
        await client.rset()
        return client
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        await _drop(client)
        return None


async def _drop(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    protocol = client.protocol  # QUIT's success closes the client and forgets it
    try:
        if client.is_connected:
            await asyncio.wait_for(client.quit(), timeout=2)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        await _closed(client, protocol)  # QUIT may leave it open when the server hung up


async def _closed(client: aiosmtplib.SMTP, protocol: Any = None, wait: float = 1.0) -> None:
    """Close and let the loop finish closing: over TLS the socket underneath closes only
    after the close_notify exchange, and a loop that ends first leaks it (ResourceWarning
    'unclosed transport'). Bounded by ``wait`` seconds."""
    protocol = protocol or client.protocol
    client.close()
    deadline = asyncio.get_running_loop().time() + wait
    while protocol is not None and protocol.transport is not None and \
            asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    for _ in range(3):  # the SSL layer hands connection_lost on with call_soon
        await asyncio.sleep(0)


class SigningTransport:
    """Signs every message (DKIM) on its way to the transport underneath: digests,
    confirmations and test copies all pass here, so none leaves unsigned."""

    def __init__(self, inner: Transport, signer: DkimSigner) -> None:
        self.inner, self.signer = inner, signer

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        return await self.inner.send(self.signer.sign(message), sender=sender,
                                     recipients=recipients)

    async def aclose(self) -> None:
        await self.inner.aclose()


def make_transport(config: Config) -> Transport:
    """SMTP pool when ``[smtp] host`` is set, else the local Maildir; signing each message
    when ``[mail] dkim_key`` is set (a bad key is a ConfigError here, before any row is
    claimed)."""
    transport: Transport
    if not config.smtp.host:
        transport = MaildirTransport(config.resolve(config.mail.maildir))
    else:
        s = config.smtp
        transport = SmtpPool(host=s.host, port=s.port, security=s.security,
                             username=s.username, password=s.password,
                             connections=s.connections, rate=s.rate, timeout=s.timeout)
    signer = dkim_signer(config)
    return SigningTransport(transport, signer) if signer else transport


def envelope_sender(config: Config) -> str:
    return sender_address(config).addr_spec


async def send_message(transport: Transport, config: Config, msg: EmailMessage) -> str:
    recipients = [a.addr_spec for a in msg["To"].addresses]
    return await transport.send(message_bytes(msg), sender=envelope_sender(config),
                                recipients=recipients)


def send_now(config: Config, msg: EmailMessage) -> str:
    """Send one message with a fresh transport (for confirmations and test copies)."""

    async def run() -> str:
        transport = make_transport(config)
        try:
            return await send_message(transport, config, msg)
        finally:
            await transport.aclose()

    return asyncio.run(run())
