"""Attacks on the digest's "proven as built" path (``emails.Wire``, sent by the pool without
scanning it): hostile entries, names, templates, addresses and settings, sent for real to
SMTP servers on 127.0.0.1. What arrives must be, byte for byte, what aiosmtplib's own
``sendmail`` sends for ``bytes(message)`` (its two regular expressions: line endings, then
dot-stuffing), and a ``Wire`` must be impossible to make anywhere but ``build_wire``."""

from __future__ import annotations

import ast
import asyncio
import base64
import copy
import email
import email.policy
import mailbox
import pickle
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seriesfeed import emails, messages, tokens
from seriesfeed.config import Config, load_config
from seriesfeed.emails import FastTemplate, Wire
from seriesfeed.errors import ValidationError
from seriesfeed.mailer import MaildirTransport, SigningTransport, SmtpPool, wire_body
from seriesfeed.metrics import TimedTransport
from seriesfeed.models import Entry, Series, SeriesText
from seriesfeed.qp import PreparedBody
from tests.smtp_server import BoundController, Recorder

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("@@UNSUB@@", "@@PREFS@@")


def _template() -> FastTemplate:
    return FastTemplate("Site <news@example.org>", "Subject", "Mon, 07 Dec 2026 20:00:00 +0000",
                        (("List-Id", "Digest <digest.example.org>"),), "==b==")


def _built() -> Wire:
    wired = PreparedBody(".a\n@@UNSUB@@\n", MARKERS).encode_wire({MARKERS[0]: ".u"})
    assert wired is not None
    built = _template().build_wire(to_email="r@example.org", to_name=None,
                                   message_id="<d.1@example.org>", text=wired, html=wired)
    assert type(built) is Wire and built.stuffed is not None
    return built


# -- a Wire is made by build_wire only -----------------------------------------------------

@pytest.mark.parametrize("forged", [b"a\nb\r\n", b"a\rb\r\n", b".\r\n", b"no end"])
def test_nobody_but_build_wire_can_make_a_wire(forged: bytes) -> None:
    """The pool sends a Wire without looking at it: one made from any bytes would put a
    bare LF, an unstuffed '.' line or an unterminated message on the wire."""
    with pytest.raises(TypeError):
        Wire(forged)
    with pytest.raises(TypeError):
        Wire.__new__(Wire, forged)


def test_copies_and_pickles_of_a_wire_are_plain_bytes_scanned_again() -> None:
    built = _built()
    for other in (copy.copy(built), copy.deepcopy(built), pickle.loads(pickle.dumps(built))):
        assert type(other) is bytes and other == built
        assert wire_body(other) == wire_body(built)


def test_a_wire_cannot_be_given_other_stuffed_bytes() -> None:
    built = _built()
    with pytest.raises(AttributeError):
        built.stuffed = b"MAIL FROM:<x@evil.example>\r\n"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del built.stuffed  # type: ignore[misc]
    assert wire_body(built) == wire_body(bytes(built))


def test_only_build_wire_calls_wire_in_the_source() -> None:
    """Every place in src/ that calls ``Wire(...)``: build_wire alone."""
    callers = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Call) and (
                        (isinstance(node.func, ast.Name) and node.func.id == "Wire") or
                        (isinstance(node.func, ast.Attribute) and node.func.attr == "Wire")):
                    callers.append((path.name, func.name))
    assert callers == [("emails.py", "build_wire")]



# -- real servers: aiosmtpd behind a proxy that keeps every byte the client wrote ---------

@dataclass
class Relay:
    port: int
    recorder: Recorder
    streams: list[bytearray]  # what each connection's client wrote, in order

    def data_payloads(self) -> list[bytes]:
        """Each DATA's bytes as written (dot-stuffed, up to and with the final '.')."""
        out = []
        for stream in self.streams:
            rest = bytes(stream)
            while b"DATA\r\n" in rest:
                rest = rest.split(b"DATA\r\n", 1)[1]
                end = rest.index(b"\r\n.\r\n") + 5 if not rest.startswith(b".\r\n") else 3
                out.append(rest[:end])
                rest = rest[end:]
        return out


@pytest.fixture
def relay() -> Iterator[tuple[BoundController, Recorder]]:
    recorder = Recorder()
    controller = BoundController(recorder, hostname="127.0.0.1", port=0, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()


async def _proxy(target: int, streams: list[bytearray],
                 handlers: list[asyncio.Task[None]]) -> asyncio.Server:
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   keep: bytearray | None) -> None:
        try:
            while chunk := await reader.read(65536):
                if keep is not None:
                    keep.extend(chunk)
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)  # type: ignore[arg-type]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        streams.append(bytearray())
        try:
            await asyncio.gather(pump(reader, up_writer, streams[-1]),
                                 pump(up_reader, writer, None), return_exceptions=True)
        finally:
            writer.close()
            up_writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _both_ways(relay: tuple[BoundController, Recorder], message: bytes, to: str,
               sender: str = "news@example.org", wrap: bool = False) -> Relay:
    """``message`` through the pool (a Wire goes unscanned), then ``bytes(message)`` through
    aiosmtplib's own ``send`` (its ``data()``), each on a connection of its own."""
    controller, recorder = relay
    streams: list[bytearray] = []

    async def go() -> None:
        handlers: list[asyncio.Task[None]] = []
        server = await _proxy(int(controller.port), streams, handlers)
        port = server.sockets[0].getsockname()[1]
        pool = SmtpPool(host="127.0.0.1", port=port, security="none", connections=1,
                        timeout=10)
        transport = TimedTransport(pool) if wrap else pool
        try:
            try:
                await transport.send(message, sender=sender, recipients=[to])
            finally:
                await transport.aclose()
            options = [*(["SMTPUTF8"] if not (to + sender).isascii() else []),
                       *(["BODY=8BITMIME"] if not message.isascii() else [])]
            await aiosmtplib.send(bytes(message), sender=sender, recipients=[to],
                                  hostname="127.0.0.1", port=port, use_tls=False,
                                  start_tls=False, timeout=10, mail_options=options)
            await asyncio.wait_for(asyncio.gather(*handlers), 10)  # both said QUIT
        finally:  # a refused message too: no socket left open for a later test to see
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            server.close()
            await server.wait_closed()

    asyncio.run(go())
    recorder.wait_for(2)
    return Relay(int(controller.port), recorder, streams)


def _same_on_the_wire(sent: Relay) -> tuple[bytes, bytes]:
    pool_data, aio_data = sent.data_payloads()
    assert pool_data == aio_data  # byte for byte what aiosmtplib's data() writes
    first, second = (m.data for m in sent.recorder.messages[-2:])
    assert first == second  # and what the server took from each
    return pool_data, first


def _parsed(data: bytes) -> EmailMessage:
    # UTF-8 headers (RFC 6532) when an address needs them: read them as such
    parsed = email.message_from_bytes(data, policy=email.policy.default) if data.isascii() \
        else email.message_from_string(data.decode("utf-8"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# -- hostile digests, sent for real ----------------------------------------------------------

HOSTILE = ["\r", "\n.", ".\r\n", ".", "\r\n.\r\n", "\0", "\u2028", "\u0085",
           "x" * 3000, "\n.\n", "..", "\r\r\n", "\n\n.\n\n", ".\n.\n.", "\u202e",
           "=", " \n", "\t.", "SERIESFEED-UNSUBSCRIBE-URL", ".SERIESFEED-PREFERENCES-URL",
           "<p>.</p>\n<p>\r.</p>", "x" * 75 + ".", "x" * 76 + "\n.x"]
HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "list-id",
           "content-language", "list-unsubscribe-post", "list-unsubscribe", "feedback-id",
           "content-type"}


def _site(make_config: Callable[..., Path], tmp_path: Path, extra: str = "",
          **sections: dict[str, object]) -> Config:
    mail = {"from": "Digest <digest@example.org>", "maildir": "var/maildir"}
    mail.update(sections.pop("mail", {}))  # type: ignore[arg-type]
    return load_config(make_config(extra, mail=mail, security={"secret_key": "s" * 32},
                                   **sections), env={})


def _entries(config: Config, texts: list[str], language: str = "en") -> list[Entry]:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    return [Entry(series="s", language=language, title=f"{t}title{t}", summary=f"{t}sum{t}",
                  published=when, content_html=f"<p>{t}</p>{t}<pre>{t}</pre>",
                  url=f"https://example.org/{n}", part=n + 1, parts=len(texts) + 1)
            for n, t in enumerate(texts)]


def _digest(config: Config, entries: list[Entry], *, to: str = "reader@example.org",
            name: str | None = "Ana", catch_up: bool = False, title: str = "Series",
            subscriber_id: int = 7, language: str = "en") -> bytes:
    rendered = messages.render_digest_mail(
        config, language, entries, {"s": Series("s", {language: SeriesText(title)})}, {},
        catch_up=catch_up)
    assert rendered is not None
    key = tokens.ensure_secret_key(config)
    return messages.digest_message(config, key, messages.Recipient(
        subscriber_id, to, name, f"<digest.1.{subscriber_id}@example.org>", 1, language),
        rendered)


def _check_arrived(data: bytes, to: str) -> EmailMessage:
    """One message, its own headers only, a single recipient, every line CRLF-ended."""
    parsed = _parsed(data)
    assert {k.lower() for k in parsed} == HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == [to]
    assert parsed.is_multipart() and len(parsed.get_payload()) == 2  # type: ignore[arg-type]
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    return parsed


@pytest.mark.parametrize("catch_up", [False, True])
def test_hostile_entries_go_out_as_aiosmtplib_sends_them(
        make_config: Callable[..., Path], tmp_path: Path, relay: tuple[BoundController, Recorder],
        catch_up: bool) -> None:
    config = _site(make_config, tmp_path)
    data = _digest(config, _entries(config, HOSTILE), catch_up=catch_up)
    assert type(data) is Wire and data.stuffed is not None  # the unscanned path, dots in it
    _wire, arrived = _same_on_the_wire(_both_ways(relay, data, "reader@example.org"))
    assert arrived == bytes(data)
    parsed = _check_arrived(arrived, "reader@example.org")
    text = parsed.get_payload()[0].get_content()  # type: ignore[index]
    assert "\r" not in text.replace("\r\n", "") and "\n.\n" in text.replace("\r\n", "\n")


@pytest.mark.parametrize("name", [".", "..", ".Ana.", "Ana\r\nBcc: x@evil.example",
                                  "Ana\nBcc: x@evil.example", "\u202eanA", "עֲנָה",
                                  "=?UTF-8?Q?=0D=0ABcc:_x@evil.example?=", "a\u2028b\u0085c",
                                  "x" * 500, "Ana <x@evil.example>, y@evil.example"])
@pytest.mark.parametrize("to", ["reader@example.org", "léa@example.org", "阿@例え.example"])
def test_hostile_names_and_utf8_addresses(make_config: Callable[..., Path], tmp_path: Path,
                                          relay: tuple[BoundController, Recorder],
                                          name: str, to: str) -> None:
    config = _site(make_config, tmp_path)
    data = _digest(config, _entries(config, [".", "\r\n.\r\n"]), to=to, name=name)
    assert type(data) is Wire
    _wire, arrived = _same_on_the_wire(_both_ways(relay, data, to))
    parsed = _check_arrived(arrived, to)
    shown = parsed["To"].addresses[0].display_name
    assert "\n" not in shown and "\r" not in shown and "@" not in shown


@pytest.mark.parametrize("sender", ['"..News.." <news@example.org>', "Ünïcødé · Новости "
                                    "<news@example.org>", ".@example.org",
                                    "news@xn--exmple-cua.org",
                                    "=?UTF-8?Q?a=0D=0AX:_y?= <n@example.org>"])
@pytest.mark.parametrize("site", ["العربية", "中文的系列", "हिन्दी", "Новости мировой политики",
                                  "Ελληνικά " * 20, ".", "..x"])
def test_odd_senders_and_site_titles_in_other_scripts(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder], sender: str, site: str) -> None:
    """A site title in another script names the list (List-Id, RFC 2047): a long one is
    folded into several encoded words, which must not stop every digest from being built."""
    config = _site(make_config, tmp_path, mail={"from": sender,
                                                "unsubscribe_mailto": "un.sub@example.org"},
                   site={"title": site, "url": "https://example.org"})
    data = _digest(config, _entries(config, ["."]), title=site)
    assert type(data) is Wire
    envelope = emails.sender_address(config).addr_spec
    _wire, arrived = _same_on_the_wire(_both_ways(relay, data, "reader@example.org",
                                                  sender=envelope))
    parsed = _check_arrived(arrived, "reader@example.org")
    assert "mailto:un.sub@example.org?subject=unsubscribe%20" in str(parsed["List-Unsubscribe"])
    label = emails.safe_display_name(f"{emails.safe_display_name(site) or 'seriesfeed'} digest")
    assert str(parsed["List-Id"]) == f"{label} <digest.{emails.message_domain(config)}>"


@pytest.mark.parametrize("title", ["\r\n.\r\nBcc: x@evil.example", ".", "\n\nX: y",
                                   "a\u2028b\u0085c\0d", "=?UTF-8?Q?=0D=0ABcc:_x@evil.example?=",
                                   "t" * 1200, "Заголовок серии " * 12])
def test_a_publishers_series_title_stays_in_the_subject(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder], title: str) -> None:
    """The series' title (the publisher's feed) is the subject and the heading."""
    config = _site(make_config, tmp_path)
    data = _digest(config, _entries(config, ["."]), title=title)
    assert type(data) is Wire
    _wire, arrived = _same_on_the_wire(_both_ways(relay, data, "reader@example.org"))
    parsed = _check_arrived(arrived, "reader@example.org")
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])


def test_operator_templates_with_dot_lines_and_carriage_returns(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder]) -> None:
    config = _site(make_config, tmp_path)
    folder = config.resolve("templates")
    shutil.copytree(ROOT / "templates", folder)
    (folder / "email" / "digest.txt.j2").write_text(
        ".\n..{{ heading }}\r\n.{{ unsubscribe_url }}\r.\n{% for e in entries %}.{{ e.title }}"
        "\r{{ e.summary }}\n.\n{% endfor %}.{{ preferences_url }}\r\n.", encoding="utf-8")
    (folder / "email" / "digest.html.j2").write_text(
        ".<p>\r{{ unsubscribe_url }}</p>\n.\n{% for e in entries %}.{{ e.content_html|safe }}"
        "\r\n{% endfor %}\r.{{ preferences_url }}.", encoding="utf-8")
    data = _digest(config, _entries(config, HOSTILE[:8]))
    assert type(data) is Wire and data.stuffed is not None
    wire, arrived = _same_on_the_wire(_both_ways(relay, data, "reader@example.org", wrap=True))
    assert wire.count(b"\r\n..") >= 4
    _check_arrived(arrived, "reader@example.org")


# -- what must still be scanned: signed digests, every other mail ---------------------------

def test_a_signed_digest_is_plain_bytes_scanned_and_verifies(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder], dkim_key: tuple[Path, bytes]) -> None:
    import dkim

    key, der = dkim_key
    config = _site(make_config, tmp_path, mail={"dkim_key": str(key), "dkim_selector": "sf",
                                                "dkim_domain": "example.org"})
    signer = emails.dkim_signer(config)
    assert signer is not None
    data = _digest(config, _entries(config, HOSTILE[:10]), name=".Ana")
    assert type(data) is Wire
    signed = signer.sign(data)
    assert type(signed) is bytes and signed.endswith(bytes(data))
    assert wire_body(signed) == wire_body(bytes(signed))  # the scanning path

    async def through_the_signing_transport() -> None:
        pool = SmtpPool(host="127.0.0.1", port=int(relay[0].port), security="none",
                        connections=1, timeout=10)
        transport = TimedTransport(SigningTransport(pool, signer))
        try:
            await transport.send(data, sender="digest@example.org",
                                 recipients=["reader@example.org"])
        finally:
            await transport.aclose()

    asyncio.run(through_the_signing_transport())
    raw = relay[1].wait_for(1)[0].data

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sf._domainkey.example.org."
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    assert raw.endswith(bytes(data)) and dkim.verify(raw, dnsfunc=dns)
    assert {k.lower() for k in _parsed(raw)} == HEADERS | {"dkim-signature"}
    _check_arrived(bytes(data), "reader@example.org")


def test_confirm_welcome_and_manage_mails_are_plain_bytes(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder]) -> None:
    config = _site(make_config, tmp_path, site={"title": ".Сайт =?x?=", "url":
                                                "https://example.org"})
    key = tokens.ensure_secret_key(config)
    when = datetime(2026, 12, 1, tzinfo=UTC)
    mails = [
        messages.confirmation_message(config, key, 5, "léa@example.org", "en", when,
                                      "<confirm.5@example.org>", (".", "\r\n.\r\n")),
        messages.welcome_message(config, key, 5, "léa@example.org", "<welcome.5@example.org>",
                                 messages.Welcome("en", messages.Frequency.DAILY,
                                                  [(".", "https://example.org/.")], when, 2)),
        messages.manage_message(config, key, 5, "léa@example.org", "en",
                                "<manage.5@example.org>")]
    for mail in mails:
        assert type(mail) is bytes
        _same_on_the_wire(_both_ways(relay, mail, "léa@example.org"))


def test_a_wire_into_a_maildir_is_the_message_as_bytes_would_be(tmp_path: Path,
                                                                 make_config: Callable[..., Path]
                                                                 ) -> None:
    config = _site(make_config, tmp_path)
    data = _digest(config, _entries(config, HOSTILE[:6]))
    assert type(data) is Wire and data.stuffed is not None
    stored = []
    for n, message in enumerate((data, bytes(data))):
        box = tmp_path / f"md{n}"
        transport = TimedTransport(MaildirTransport(box))
        asyncio.run(transport.send(message, sender="d@example.org",
                                   recipients=["reader@example.org"]))
        (name,) = list((box / "new").iterdir())
        stored.append(name.read_bytes())
        assert len(mailbox.Maildir(str(box), create=False)) == 1
    assert stored[0] == stored[1] == bytes(data).replace(b"\r\n", b"\n")  # never stuffed


# -- tokens: the short path against json.dumps, for what callers pass and more ---------------

@pytest.mark.parametrize("subscriber", [0, 1, 2**63 - 1, 2**63, -1, -(2**63), 10**40])
@pytest.mark.parametrize("now", [0, 1.99, 1_800_000_000.5, -5.5])
def test_every_purpose_signs_the_json_payload_and_reads_back(subscriber: int,
                                                             now: float) -> None:
    import hashlib
    import hmac
    import json

    key = b"k" * 32
    for purpose in tokens.Purpose:
        payload = json.dumps({"s": subscriber, "t": int(now), "b": ""},
                             separators=(",", ":")).encode()
        mac = hmac.new(hmac.digest(key, f"seriesfeed/{purpose.value}".encode(), "sha256"),
                       payload, hashlib.sha256).digest()
        token = tokens.make_token(key, purpose, subscriber, now=now)
        assert token == f"{tokens._b64(payload)}.{tokens._b64(mac)}"
        assert tokens.read_token(key, purpose, token, now=now).subscriber_id == subscriber
        for other in tokens.Purpose:  # a token of one purpose is no other's
            if other is not purpose:
                with pytest.raises(ValidationError):
                    tokens.read_token(key, other, token, now=now)
        with pytest.raises(ValidationError):  # nor another key's
            tokens.read_token(b"j" * 32, purpose, token, now=now)


def test_ints_of_other_types_and_bound_values_take_json_dumps() -> None:
    import enum
    import json

    class Id(enum.IntEnum):
        SEVEN = 7

    key = b"k" * 32
    for subscriber, expected in ((True, "true"), (Id.SEVEN, "7")):
        token = tokens.make_token(key, tokens.Purpose.PREFERENCES, subscriber, now=10)
        payload = tokens._unb64(token.split(".")[0])
        assert json.loads(payload)["s"] == json.loads(expected)
    token = tokens.make_token(key, tokens.Purpose.UNDO, 3, bound="2026-12-07T20:00:00+00:00\u2028é",
                              now=10)
    assert tokens.read_token(key, tokens.Purpose.UNDO, token, now=10).bound == \
        "2026-12-07T20:00:00+00:00\u2028é"


def test_the_shared_keyed_hmac_gives_each_thread_its_own_token() -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = b"t" * 32
    expected = {n: tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, n, now=n) for n in
                range(2000)}
    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(expected, pool.map(
            lambda n: tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, n, now=n), expected),
            strict=True))
    assert got == expected


# -- the whole path: a hostile publisher's import, subscribers, send_digests, a real relay -----

def test_send_digests_of_a_hostile_import_through_a_real_relay(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder]) -> None:
    """What the daemon does: every message of the digest arrives intact, as the message
    ``digest_message`` builds (proven, so sent unscanned) would be sent by aiosmtplib."""
    import json

    from seriesfeed import actions
    from seriesfeed.models import Frequency
    from seriesfeed.store import open_store

    controller, recorder = relay
    config = _site(make_config, tmp_path, database={"url": f"sqlite:///{tmp_path / 's.db'}"},
                   smtp={"host": "127.0.0.1", "port": int(controller.port),
                         "security": "none"},
                   mail={"unsubscribe_mailto": "un.sub@example.org"},
                   site={"title": "Новости мировой политики", "url": "https://example.org"})
    feed = {"format": "seriesfeed/1", "series": [{"slug": "s", "texts": {"en": {
        "title": ".=?UTF-8?Q?=0D=0ABcc:_x@evil.example?=\r\n.\r\n", "description": "."}}}],
        "entries": [{"id": f"tag:example.org,2026:{n}", "series": "s", "language": "en",
                     "title": f"{t[:400]}T{t[:400]}", "summary": f"{t}S{t}",
                     "content_html": f"<p>{t}</p><pre>{t}</pre>",
                     "url": f"https://example.org/{n}", "published":
                     f"2026-11-{n + 1:02d}T00:00:00+00:00"}
                    for n, t in enumerate(HOSTILE[:20])]}
    source = tmp_path / "feed.json"
    source.write_text(json.dumps(feed), encoding="utf-8")
    store = open_store(config.database.url, config.base_dir)
    try:
        names = [".", "..Ana..", "Ana\u202eX", "Léa\u2028", None]
        for n, name in enumerate(names):
            actions.subscribers.add_subscriber(store, config, f"r{n}@example.org",
                                               name=name, confirmed=True, frequency="daily")
        actions.subscribers.add_subscriber(store, config, "ünï@example.org", confirmed=True,
                                           frequency="daily")
        actions.import_entries(store, config, source)
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
    finally:
        store.close()
    arrived = recorder.wait_for(len(names) + 1)
    assert sorted(m.recipients[0] for m in arrived) == sorted(
        [f"r{n}@example.org" for n in range(len(names))] + ["ünï@example.org"])
    for got in arrived:
        parsed = _check_arrived(got.data, got.recipients[0])
        assert "\n" not in str(parsed["Subject"]) and "Bcc" not in parsed
        text = parsed.get_payload()[0].get_content()  # type: ignore[index]
        assert "\n.\n" in text.replace("\r\n", "\n")  # the lone dots arrived as lines


# -- any mix of the hostile pieces: the proven message is the scanned one ----------------------

_PIECES = st.lists(st.sampled_from([*HOSTILE, "a", " ", "é", "中", ".a", "<b>.</b>"]),
                   max_size=8).map("".join)


@pytest.fixture(scope="module")
def fuzz_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    folder = tmp_path_factory.mktemp("fuzz")
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace(
        'unsubscribe_mailto = ""', 'unsubscribe_mailto = "un.sub@example.org"')
    (folder / "config.toml").write_text(text + '\n', encoding="utf-8")
    return load_config(folder / "config.toml", env={"SERIESFEED_SECURITY_SECRET_KEY": "s" * 32})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_PIECES, min_size=1, max_size=3), title=_PIECES,
       name=st.one_of(st.none(), _PIECES), catch_up=st.booleans(),
       subscriber=st.sampled_from([1, 2**63 - 1]),
       to=st.sampled_from(["r@example.org", "ü@example.org"]))
def test_any_hostile_digest_is_built_proven_and_sent_as_scanned(
        fuzz_config: Config, texts: list[str], title: str, name: str | None,
        catch_up: bool, subscriber: int, to: str) -> None:
    data = _digest(fuzz_config, _entries(fuzz_config, texts), to=to, name=name,
                   title=title or "T", catch_up=catch_up, subscriber_id=subscriber)
    assert type(data) is Wire
    plain = bytes(data)
    aio = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(plain)) + b".\r\n"
    assert wire_body(data) == wire_body(plain) == aio
    assert plain.count(b"\n") == plain.count(b"\r\n") == plain.count(b"\r")
    assert max(len(line) for line in plain.split(b"\r\n")) <= 998
    _check_arrived(plain, to)


# -- digest test-send: build_message, plain bytes, the publisher's title in its Subject ---------

INJECTING = "=?UTF-8?Q?=0D=0ABcc:_x@evil.example?="


def test_a_test_copy_of_a_hostile_publishers_digest_adds_no_header(
        make_config: Callable[..., Path], tmp_path: Path,
        relay: tuple[BoundController, Recorder]) -> None:
    """``digest test-send`` writes the digest's subject (the series' title, from the
    publisher's feed) through the email package, whose header parser on Python 3.11.7
    decodes an encoded CRLF inside it and writes it raw (CVE-2024-6923): a Bcc header."""
    import json

    from seriesfeed import actions
    from seriesfeed.actions.digests import send_test_copy
    from seriesfeed.store import open_store

    controller, recorder = relay
    config = _site(make_config, tmp_path, database={"url": f"sqlite:///{tmp_path / 't.db'}"},
                   smtp={"host": "127.0.0.1", "port": int(controller.port),
                         "security": "none"})
    feed = {"format": "seriesfeed/1", "series": [{"slug": "s", "texts": {"en": {
        "title": f"News {INJECTING}", "description": "."}}}],
        "entries": [{"id": "tag:example.org,2026:1", "series": "s", "language": "en",
                     "title": f"T {INJECTING}", "summary": ".", "url": "https://example.org/1",
                     "published": "2026-11-01T00:00:00+00:00"}]}
    source = tmp_path / "feed.json"
    source.write_text(json.dumps(feed), encoding="utf-8")
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.import_entries(store, config, source)
        sent = send_test_copy(store, config, language="en", to="op@example.org")
    finally:
        store.close()
    (got,) = recorder.wait_for(1)
    assert got.recipients == ["op@example.org"]
    head = got.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nbcc:" not in head.lower()
    assert INJECTING in sent.subject
    assert "Bcc" not in got.message
    assert str(got.message["Subject"]) == \
        f"[test] News {INJECTING}: 1 new article".replace("=?", "= ?")


@pytest.mark.parametrize("subject", [f"Confirm {INJECTING}", f"Новости {INJECTING} " * 5,
                                     f"{INJECTING}{INJECTING}", "=?utf-8?b?DQpCY2M6IHg=?="])
def test_no_subject_given_to_the_email_package_becomes_a_header(subject: str) -> None:
    """Confirm, welcome and manage mails name the site (the operator's title, or a
    catalogue's words) in their subject, through the same ``build_message``."""
    msg = emails.build_message(sender="a@example.org", to_email="b@example.org",
                               to_name=None, subject=subject, text=".", html=None,
                               message_id="<a@example.org>")
    data = emails.message_bytes(msg)
    parsed = _parsed(data)
    assert sorted(parsed) == sorted(["From", "To", "Subject", "Date", "Message-ID",
                                     "MIME-Version", "Content-Type",
                                     "Content-Transfer-Encoding"])
    assert "\r" not in str(parsed["Subject"]) and "\n" not in str(parsed["Subject"])


@pytest.mark.parametrize("text", ["", ".", "\r", "\r\n.\r\n", ".{{ unsubscribe_url }}",
                                  "{{ unsubscribe_url }}", "{{ preferences_url }}\r.",
                                  "." * 2000, "{% for e in entries %}{{ e.title }}{% endfor %}"])
def test_operator_templates_reduced_to_almost_nothing(
        make_config: Callable[..., Path], tmp_path: Path, text: str,
        relay: tuple[BoundController, Recorder]) -> None:
    """An override of the text part alone (no HTML template: an empty HTML part), each
    holding at most a line or two, a lone dot, a marker without a line break after it."""
    config = _site(make_config, tmp_path)
    folder = config.resolve("templates")
    shutil.copytree(ROOT / "templates", folder)
    (folder / "email" / "digest.txt.j2").write_text(text, encoding="utf-8")
    (folder / "email" / "digest.html.j2").unlink()
    data = _digest(config, _entries(config, [".", "\r\n.\r\n"]))
    assert type(data) is Wire
    _same_on_the_wire(_both_ways(relay, data, "reader@example.org"))
    _check_arrived(bytes(data), "reader@example.org")
