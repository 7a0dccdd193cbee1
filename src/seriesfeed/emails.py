"""Email content: templates rendered per language, CSS inlined, MIME messages built safely.

Headers are where mail goes wrong: a display name can smuggle an encoded CRLF on Python
3.11.7 (CVE-2024-6923), so names pass :func:`safe_display_name` first; bodies are
quoted-printable so the bytes on the wire are 7-bit, CRLF-only and never longer than 998
octets a line, whatever the server offers (RELIABILITY invariant 6).
"""

from __future__ import annotations

import binascii
import functools
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any
from urllib.parse import urlsplit

import css_inline

from seriesfeed import i18n
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.errors import ConfigError, ValidationError
from seriesfeed.qp import crlf_only, dot_stuffed
from seriesfeed.templating import localized_template, render, template_exists, templates_dir
from seriesfeed.text import clean_line

__all__ = [
    "DKIM_HEADERS",
    "MAX_NAME",
    "SMTP_POLICY",
    "DkimSigner",
    "FastTemplate",
    "Wire",
    "build_message",
    "dkim_signer",
    "encode_header_value",
    "fast_template",
    "format_recipient",
    "inline_css",
    "make_message_id",
    "message_bytes",
    "message_domain",
    "message_id_affixes",
    "qp_body",
    "render_email",
    "safe_display_name",
    "sender_address",
]

SMTP_POLICY = policy.SMTP
_NAME_UNSAFE = re.compile(r"[^\w .'\-]", re.UNICODE)
_SPACES = re.compile(r"\s+")
MAX_NAME = 64
_INLINER = css_inline.CSSInliner(keep_style_tags=True)


def safe_display_name(name: str | None) -> str | None:
    """A display name reduced to letters, digits, spaces and ``.'-``; ``None`` when
    nothing is left. Encoded-word openers (``=?``), controls, line separators, quotes,
    commas, angle brackets and ``@`` cannot survive, so a name can never add a header
    or a recipient."""
    if not name:
        return None
    value = unicodedata.normalize("NFKC", name).replace("=?", " ").replace("?=", " ")
    # letters, digits and combining marks (category M, which \w lacks: a Devanagari vowel
    # sign or an Arabic shadda is part of its letter, and without it a name falls apart)
    value = "".join(ch if ch == " " or (unicodedata.category(ch)[0] not in "CZ" and (
        unicodedata.category(ch)[0] == "M" or not _NAME_UNSAFE.match(ch))) else " "
        for ch in value)
    value = _SPACES.sub(" ", value).strip(" .-'")[:MAX_NAME].strip()
    return value or None


def sender_address(config: Config) -> Address:
    """``[mail] from`` parsed into an Address (its display name sanitised like any other)."""
    name, local, domain = _sender_parts(config.mail.from_)
    return Address(display_name=name, username=local, domain=domain)


@functools.lru_cache(maxsize=16)
def _sender_parts(sender: str) -> tuple[str, str, str]:
    """Parsed once per value: every digest message's Feedback-ID names the domain."""
    name, addr = parseaddr(sender)
    if "@" not in addr or any(c in addr for c in "\r\n <>"):
        raise ValidationError(f"'{sender}' is not an email address", field="mail.from")
    local, domain = addr.rsplit("@", 1)
    return safe_display_name(name) or "", local, domain


def message_domain(config: Config) -> str:
    return _sender_parts(config.mail.from_)[2] or \
        (urlsplit(config.public_url).hostname or "localhost")


def message_id_affixes(kind: str, key: str, config: Config) -> tuple[str, str]:
    """The two ends of a Message-ID whose key goes on with a number (a digest's rows: the
    store appends each recipient's id between them in one insert-from-select)."""
    safe_key = re.sub(r"[^A-Za-z0-9.\-_]", "-", key)
    return f"<{kind}.{safe_key}", f"@{message_domain(config)}>"


def make_message_id(kind: str, key: str, config: Config) -> str:
    """The one Message-ID builder, deterministic: the same outbox row always gets the same
    id, so a re-send after a crash is recognisable as the same message."""
    return "".join(message_id_affixes(kind, key, config))


def render_email(config: Config, language: str, name: str,
                 context: Mapping[str, Any]) -> tuple[str, str]:
    """Render ``templates/email/{name}.txt.j2`` and ``.html.j2`` (or the language's own
    copy in ``templates/email/{language}/``, when it overrides one) with the language's
    catalogue; the HTML has its CSS inlined. Returns (text, html)."""
    folder = templates_dir(config.resolve("templates"))
    full: dict[str, Any] = {
        **i18n.template_functions(config, language),
        "language": language,
        "site": config.site,
        "texts": i18n.site_texts(config, language),
        "public_url": config.public_url,
        **context,
    }
    text = render(folder, localized_template(folder, "email", language, f"{name}.txt.j2"), full)
    html_name = localized_template(folder, "email", language, f"{name}.html.j2")
    html = inline_css(render(folder, html_name, full)) if template_exists(folder, html_name) \
        else ""
    return text, html


def inline_css(html: str) -> str:
    return str(_INLINER.inline(html))


def _address(email: str, name: str | None) -> Address:
    if any(c in email for c in "\r\n\0 <>,;\"") or email.count("@") != 1:
        raise ValidationError(f"'{email!r}' is not a single email address", field="email")
    local, domain = email.rsplit("@", 1)
    return Address(display_name=safe_display_name(name) or "", username=local, domain=domain)


def build_message(*, sender: str | Address, to_email: str, to_name: str | None, subject: str,
                  text: str, html: str | None, message_id: str, date: datetime | None = None,
                  headers: Mapping[str, str] | None = None) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML) with safe headers."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = _address(to_email, to_name)
    # text that looks like an encoded word (a publisher's title in a test copy's subject)
    # is decoded by the email package's header parser, and on Python 3.11.7 a CR LF in it
    # is written out raw (CVE-2024-6923), as are encoded words given to it, when it folds
    # them again: so, as in names, no "=?" is left to decode
    msg["Subject"] = clean_line(subject).replace("=?", "= ?")
    msg["Date"] = format_datetime(date or now_utc())
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg.set_content(_normalise(text), cte="quoted-printable")
    if html:
        msg.add_alternative(_normalise(html), subtype="html", cte="quoted-printable")
    # after the body: set_content drops every Content-* header (Content-Language too)
    for key, value in (headers or {}).items():
        if any(c in value for c in "\r\n\0"):
            raise ValidationError("a header value contains a line break", field=key)
        msg[key] = value
    return msg


def _normalise(body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body if body.endswith("\n") else body + "\n"


def message_bytes(msg: EmailMessage) -> bytes:
    """The wire form: CRLF line endings, 7-bit (quoted-printable bodies); UTF-8 headers
    (RFC 6532) only when an address needs them, for a relay that offers SMTPUTF8."""
    addresses = [a.addr_spec for field in ("From", "To") for a in msg[field].addresses]
    utf8 = not all(a.isascii() for a in addresses)
    return msg.as_bytes(policy=SMTP_POLICY.clone(utf8=True) if utf8 else SMTP_POLICY)


# the longest word a header line keeps whole: "Subject: " and it stay within RFC 5321's
# 998 octets a line (a relay refuses a longer line with a 5xx that names no one)
_LONGEST_WORD = 900


def encode_header_value(value: str, *, folded: bool = True) -> str:
    """RFC 2047 (UTF-8, Q or B as shorter) only when the value is not plain ASCII, holds
    ``=?`` (text that a reader would otherwise decode as an encoded word of its own: a
    publisher's "=?UTF-8?Q?=0D=0ABcc:...?=" title would read as a line break and a
    header) or a word too long for one line (encoded words split it). ``folded=False``:
    the encoded words on one line, a space apart, for a caller that checks a value has no
    line break and folds it itself (List-Id)."""
    value = clean_line(value)
    if value.isascii() and "=?" not in value and \
            all(len(word) <= _LONGEST_WORD for word in value.split(" ")):
        return value
    encoded = Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")
    return encoded if folded else encoded.replace("\r\n ", " ")


def format_recipient(email: str, name: str | None) -> str:
    safe = safe_display_name(name)
    if any(c in email for c in "\r\n\0 <>,;\"") or email.count("@") != 1:
        raise ValidationError(f"'{email!r}' is not a single email address", field="email")
    if not safe:
        return email
    if not email.isascii():
        # formataddr refuses a non-ASCII address (UnicodeEncodeError); this one goes out
        # with SMTPUTF8, whose headers are UTF-8 (RFC 6532), so the name is written as a
        # quoted string (a safe name holds no quote or backslash)
        return f'"{safe}" <{email}>'
    return formataddr((safe, email), charset="utf-8")


def qp_body(text: str) -> bytes:
    """Quoted-printable, CRLF line endings, lines of at most 76 octets."""
    data = _normalise(text).encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


class Wire(bytes):
    """A message proven, piece by piece as :class:`FastTemplate` built it, to be CRLF-only
    (no bare CR or LF anywhere: nothing for a relay to read as a line break of its own)
    and ending in CRLF; ``stuffed`` is the same message dot-stuffed for SMTP DATA, or None
    when no line begins with a dot. The SMTP transport sends it without scanning the whole
    message again (two C passes and a copy over every 20 KB digest, more than the rest of
    building it). Anything that makes new bytes of it (a DKIM signature in front, a slice,
    a join) makes plain bytes, which are checked as before.

    Only :meth:`FastTemplate.build_wire` can make one (it holds ``_PROVEN``): a Wire made
    of any other bytes would go out unscanned. It is read-only, and a copy or a pickle of
    it is plain bytes (proven here, not wherever it is loaded again)."""

    stuffed: bytes | None

    def __new__(cls, data: bytes, stuffed: bytes | None = None, *,
                proof: object = None) -> Wire:
        if proof is not _PROVEN:
            raise TypeError("a Wire is made only by FastTemplate.build_wire, which proves it")
        wire = super().__new__(cls, data)
        object.__setattr__(wire, "stuffed", stuffed)
        return wire

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Wire is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Wire is read-only")

    def __reduce__(self) -> tuple[type[bytes], tuple[bytes]]:
        return bytes, (bytes(self),)


_PROVEN = object()  # build_wire's alone: see Wire


@dataclass(frozen=True)
class FastTemplate:
    """The parts of a digest message that are the same for every recipient, prebuilt once;
    :meth:`build` fills in the recipient's parts. Equivalent to :func:`build_message`
    (tests compare the two after parsing) at a fraction of the cost."""

    from_header: str
    subject_header: str
    date_header: str
    extra_headers: tuple[tuple[str, str], ...]
    boundary: str

    def build(self, *, to_email: str, to_name: str | None, message_id: str, text: str,
              html: str, per_recipient_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        return self.build_encoded(to_email=to_email, to_name=to_name, message_id=message_id,
                                  text_qp=qp_body(text), html_qp=qp_body(html),
                                  per_recipient_headers=per_recipient_headers)

    def build_encoded(self, *, to_email: str, to_name: str | None, message_id: str,
                      text_qp: bytes, html_qp: bytes,
                      per_recipient_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        """:meth:`build` with the bodies already quoted-printable (``qp_body`` or a
        :class:`seriesfeed.qp.PreparedBody`), so a digest encodes its body once."""
        head = self._head(to_email, to_name, message_id, per_recipient_headers)
        text_part, html_part, end = self._parts
        return b"".join([head, text_part, text_qp, html_part, html_qp, end])

    def build_wire(self, *, to_email: str, to_name: str | None, message_id: str,
                   text: tuple[bytes, bytes | None], html: tuple[bytes, bytes | None],
                   per_recipient_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        """:meth:`build_encoded` with each body as ``PreparedBody.encode_wire`` proved it
        (its bytes and, when some line begins with a dot, the same stuffed): a
        :class:`Wire` when the headers are proven too, else plain bytes."""
        head = self._head(to_email, to_name, message_id, per_recipient_headers)
        text_part, html_part, end = self._parts
        pieces = [head, text_part, text[0], html_part, html[0], end]
        if not (self._parts_proven and crlf_only(head) and dot_stuffed(head) is None):
            return b"".join(pieces)
        stuffed = None
        if text[1] is not None or html[1] is not None:
            stuffed = b"".join([head, text_part, text[1] or text[0], html_part,
                                html[1] or html[0], end])
        return Wire(b"".join(pieces), stuffed, proof=_PROVEN)

    def _head(self, to_email: str, to_name: str | None, message_id: str,
              per_recipient_headers: tuple[tuple[str, str], ...]) -> bytes:
        if any(c in message_id for c in "\r\n\0"):
            raise ValidationError("the Message-ID contains a line break", field="message_id")
        lines = [self._from_line, _fold(f"To: {format_recipient(to_email, to_name)}"),
                 self._subject_date, _fold(f"Message-ID: {message_id}"),
                 *self._extra_lines]
        lines += [_fold(line) for line in _header_lines(per_recipient_headers)]
        lines.append(self._content_type)
        # UTF-8 only for an internationalised address (sent with SMTPUTF8, RFC 6532)
        return "\r\n".join(lines).encode("utf-8")

    @functools.cached_property
    def _parts_proven(self) -> bool:
        """The boundary lines and part headers: CRLF-only, no line begins with a dot, and
        the last ends the message with CRLF (each body begins a line: after a blank one)."""
        text_part, html_part, end = self._parts
        return all(crlf_only(p) and dot_stuffed(p) is None for p in self._parts) and \
            text_part.endswith(b"\r\n\r\n") and html_part.endswith(b"\r\n\r\n") and \
            end.endswith(b"\r\n")

    # the lines that are the same for every recipient are checked and folded once per
    # digest, not once per message (cached_property writes past the frozen dataclass)
    @functools.cached_property
    def _from_line(self) -> str:
        return _fold(f"From: {self.from_header}")

    @functools.cached_property
    def _subject_date(self) -> str:
        return "\r\n".join((_fold(f"Subject: {self.subject_header}"),
                              _fold(f"Date: {self.date_header}")))

    @functools.cached_property
    def _extra_lines(self) -> tuple[str, ...]:
        # not cached when a value is bad: each message then fails alone, as before
        return ("MIME-Version: 1.0",
                *(_fold(line) for line in _header_lines(self.extra_headers)))

    @functools.cached_property
    def _content_type(self) -> str:
        return _fold(f'Content-Type: multipart/alternative; boundary="{self.boundary}"')

    @functools.cached_property
    def _parts(self) -> tuple[bytes, bytes, bytes]:
        part = ('Content-Type: text/{0}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        b = self.boundary.encode("ascii")
        # the CRLF before each boundary belongs to the boundary, not to the part
        return (b"\r\n\r\n--" + b + b"\r\n" + part.format("plain").encode(),
                b"\r\n--" + b + b"\r\n" + part.format("html").encode(),
                b"\r\n--" + b + b"--\r\n")


def _header_lines(headers: tuple[tuple[str, str], ...]) -> list[str]:
    """``Key: value`` lines, refusing a value that would break out of its header."""
    lines = []
    for key, value in headers:
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValidationError("a header value contains a line break", field=key)
        lines.append(f"{key}: {value}")
    return lines


def _fold(line: str) -> str:
    """Fold a header line at spaces (never right after the colon) to keep lines short; a
    single long word (a URL) stays whole: lines stay far below 998 octets."""
    if len(line) <= 78 or "\r\n" in line:
        return line
    words = line.split(" ")
    out, current = [], f"{words[0]} {words[1]}" if len(words) > 1 else words[0]
    for word in words[2:]:
        if len(current) + 1 + len(word) > 78:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    out.append(current)
    return "\r\n".join(out)


def fast_template(config: Config, subject: str, extra_headers: tuple[tuple[str, str], ...],
                  date: datetime | None = None) -> FastTemplate:
    sender = sender_address(config)
    from_header = formataddr((sender.display_name, sender.addr_spec), charset="utf-8") \
        if sender.display_name else sender.addr_spec
    return FastTemplate(from_header, encode_header_value(subject),
                        format_datetime(date or now_utc()), extra_headers,
                        f"==seriesfeed-{secrets.token_hex(12)}==")


DKIM_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"feedback-id",
                b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type"]


@dataclass(frozen=True)
class DkimSigner:
    selector: bytes
    domain: bytes
    key: bytes

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front (relaxed/simple, rsa-sha256)."""
        import dkim

        signature: bytes = dkim.sign(message, self.selector, self.domain, self.key,
                                     include_headers=DKIM_HEADERS)
        return signature + message


def dkim_signer(config: Config) -> DkimSigner | None:
    if not config.mail.dkim_key:
        return None
    if not (config.mail.dkim_selector and config.mail.dkim_domain):
        raise ConfigError("mail.dkim_selector and mail.dkim_domain are needed with dkim_key",
                          key="mail.dkim_selector")
    try:
        key = config.resolve(config.mail.dkim_key).read_bytes()
    except OSError as exc:
        raise ConfigError(f"mail.dkim_key: cannot read {config.mail.dkim_key}: {exc}",
                          key="mail.dkim_key") from exc
    import dkim.crypto

    try:  # checked once, here: a bad key would otherwise fail every message of a digest
        dkim.crypto.parse_pem_private_key(key)
    except (dkim.crypto.UnparsableKeyError, ValueError) as exc:
        raise ConfigError(f"mail.dkim_key: {config.mail.dkim_key} is not a PEM RSA private "
                          f"key ({exc})", key="mail.dkim_key") from exc
    return DkimSigner(config.mail.dkim_selector.encode(), config.mail.dkim_domain.encode(), key)
