"""Prepared quoted-printable bodies give exactly the bytes of encoding the filled-in body."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from seriesfeed.emails import qp_body
from seriesfeed.qp import PreparedBody

MARKERS = ("@@UNSUB@@", "@@PREFS@@")


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


_piece = st.one_of(
    st.text(max_size=120),
    st.sampled_from([" ", "\t", "\n", "\r\n", "\r", "=", ".", "é", "  \n", "=\n", "x" * 80,
                     "a" * 75 + " ", *MARKERS]))


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(_piece, max_size=30),
       # the values are links: one line, never empty (an empty one, or one beginning
       # with LF, right after a lone CR joins the two into one break in the whole body)
       values=st.tuples(st.text(min_size=1, max_size=300).map(_one_line),
                        st.text(min_size=1, max_size=80).map(_one_line)))
def test_prepared_body_encodes_like_the_whole_body(parts: list[str],
                                                   values: tuple[str, str]) -> None:
    body = "".join(parts)
    filled = body.replace(MARKERS[0], values[0]).replace(MARKERS[1], values[1])
    prepared = PreparedBody(body, MARKERS)
    assert prepared.encode(dict(zip(MARKERS, values, strict=True))) == qp_body(filled)


def test_only_marker_lines_are_left_for_each_message() -> None:
    body = "static one\nlink: @@UNSUB@@\n" + "long static text " * 40 + "\nend"
    prepared = PreparedBody(body, MARKERS)
    assert [type(p) for p in prepared.pieces] == [bytes, str, bytes]
    assert prepared.encode({MARKERS[0]: "https://x.example/u/1"}).count(b"https://x.example") == 1
