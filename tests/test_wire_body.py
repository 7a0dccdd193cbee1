"""The DATA body the pool writes itself (no per-message regex) is byte for byte what
aiosmtplib's ``data()`` would have sent, for every message whose line endings are CRLF;
any other message is left to ``data()`` (``wire_body`` says None)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from seriesfeed import actions, messages, tokens
from seriesfeed.actions.delivery import render_digest
from seriesfeed.config import Config
from seriesfeed.emails import FastTemplate, Wire
from seriesfeed.errors import ValidationError
from seriesfeed.mailer import wire_body
from seriesfeed.qp import PreparedBody
from seriesfeed.store import Store

ROOT = Path(__file__).resolve().parent.parent

LINES = st.lists(st.text(alphabet=st.sampled_from(list(". a\t=é")), max_size=12)
                 .map(lambda t: t.encode("utf-8")), max_size=12)


def _aiosmtplib(message: bytes) -> bytes:
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


@given(LINES, st.booleans())
def test_crlf_messages_go_out_as_aiosmtplib_would_send_them(lines: list[bytes],
                                                            final_crlf: bool) -> None:
    message = b"\r\n".join(lines) + (b"\r\n" if final_crlf else b"")
    assert wire_body(message) == _aiosmtplib(message)


@given(LINES, st.sampled_from([b"\n", b"\r", b"\r\r\n", b"\n\n"]))
def test_a_bare_cr_or_lf_is_left_to_aiosmtplib(lines: list[bytes], bad: bytes) -> None:
    message = b"\r\n".join(lines) + bad + b"x\r\n"
    assert wire_body(message) is None


def test_dot_lines_and_the_first_line_are_stuffed() -> None:
    assert wire_body(b".a\r\n..b\r\nc.\r\n.") == b"..a\r\n...b\r\nc.\r\n..\r\n.\r\n"


@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"."]), max_size=16))
def test_any_mix_of_cr_and_lf_is_judged_as_by_counting_each(pieces: list[bytes]) -> None:
    # the pairs-and-deletions rule says None exactly when a CR or LF is outside a CRLF
    # pair, as counting CR, LF and CRLF one by one did ("\r\r\n\n" holds one pair, two bare)
    message = b"".join(pieces)
    crlf = message.count(b"\r\n")
    bare = message.count(b"\r") != crlf or message.count(b"\n") != crlf
    assert (wire_body(message) is None) == bare


# -- messages proven CRLF-only as they are built (emails.Wire) ----------------------------

MARKERS = ("@@UNSUB@@", "@@PREFS@@")
_BODY = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(
    [".", "..", ".\n", "\n.", "\n..x", "\r\n.", "\r", "\n", "=", " \n", "x" * 80, *MARKERS])),
    max_size=20).map("".join)
_VALUE = st.one_of(st.sampled_from([".", ".x", "https://example.org/u/a.b", "\r\n.", "\n"]),
                   st.text(max_size=90))


def _template() -> FastTemplate:
    return FastTemplate("Site <news@example.org>", "Subject", "Mon, 07 Dec 2026 20:00:00 +0000",
                        (("List-Id", "Digest <digest.example.org>"),), "==b==")


@settings(max_examples=300, deadline=None)
@given(text=_BODY, html=_BODY, values=st.tuples(_VALUE, _VALUE))
def test_a_message_built_proven_goes_out_as_the_scanned_one_would(
        text: str, html: str, values: tuple[str, str]) -> None:
    filled = dict(zip(MARKERS, values, strict=True))
    template = _template()
    text_body, html_body = PreparedBody(text, MARKERS), PreparedBody(html, MARKERS)
    text_wire, html_wire = text_body.encode_wire(filled), html_body.encode_wire(filled)
    assert text_wire is not None and html_wire is not None  # what encode_lines makes is CRLF
    built = template.build_wire(to_email="r@example.org", to_name="Ana López",
                                message_id="<d.1@example.org>", text=text_wire, html=html_wire)
    plain = template.build_encoded(to_email="r@example.org", to_name="Ana López",
                                   message_id="<d.1@example.org>",
                                   text_qp=text_body.encode(filled),
                                   html_qp=html_body.encode(filled))
    assert type(built) is Wire
    assert bytes(built) == plain  # the same message
    assert wire_body(built) == wire_body(plain) == _aiosmtplib(plain)  # the same DATA


def test_what_changes_a_proven_message_makes_bytes_that_are_scanned_again() -> None:
    prepared = PreparedBody("a\n.b\n@@UNSUB@@\n", MARKERS)
    wired = prepared.encode_wire({MARKERS[0]: ".c"})
    assert wired is not None
    built = _template().build_wire(to_email="r@example.org", to_name=None,
                                   message_id="<d.1@example.org>", text=wired, html=wired)
    assert type(built) is Wire and built.stuffed is not None
    signed = b"DKIM-Signature: v=1\r\n" + built
    assert type(signed) is bytes
    assert wire_body(signed) == _aiosmtplib(signed)
    assert wire_body(built[:-2] + b"\n") is None  # a slice is plain bytes: a bare LF found


def test_a_message_id_with_a_line_break_is_refused() -> None:
    wired = PreparedBody("a\n", MARKERS).encode_wire({})
    assert wired is not None
    for bad in ("<a@b>\r\nBcc: x@example.org", "<a@b>\n.", "<a\0@b>"):
        with pytest.raises(ValidationError) as info:
            _template().build_wire(to_email="r@example.org", to_name=None, message_id=bad,
                                   text=wired, html=wired)
        assert info.value.field == "message_id"


def test_a_real_digest_is_built_proven_and_goes_out_as_scanned(store: Store,
                                                                config: Config) -> None:
    """The seed's digest takes the proven path for every recipient (the dots are the
    property test's above), and its DATA is what scanning gives."""
    actions.import_entries(store, config, ROOT / "examples" / "iso-crisis-series-page.txt")
    rendered = render_digest(store, config, "en", 0, 10**9, (), view_url="https://x/v/")
    assert rendered is not None
    key = tokens.ensure_secret_key(config)
    for n, name in enumerate(["Ana López", None, "..dots"]):
        data = messages.digest_message(config, key, messages.Recipient(
            n + 1, f"reader{n}@example.org", name, f"<digest.1.{n}@example.org>", 1, "en"),
            rendered)
        assert type(data) is Wire
        assert wire_body(data) == _aiosmtplib(bytes(data))

