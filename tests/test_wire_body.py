"""The DATA body the pool writes itself (no per-message regex) is byte for byte what
aiosmtplib's ``data()`` would have sent, for every message whose line endings are CRLF;
any other message is left to ``data()`` (``wire_body`` says None)."""

from __future__ import annotations

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from seriesfeed.mailer import wire_body

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
