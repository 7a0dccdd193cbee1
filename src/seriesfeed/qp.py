"""Quoted-printable bodies prepared once per digest: only the lines that differ between
recipients (those holding a per-recipient marker such as the unsubscribe link) are encoded
for each message; every other line is encoded once.

Quoted-printable works line by line (soft breaks and trailing-space escapes never cross a
hard line break), so encoding a body as a sequence of whole-line pieces gives exactly the
bytes that encoding it at once gives: :func:`seriesfeed.emails.qp_body` is the reference
and a test compares the two.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

__all__ = [
    "PreparedBody", "encode_lines", "normalise",
]


def normalise(body: str) -> str:
    """LF line endings and a final line break (what ``emails.qp_body`` encodes)."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body if body.endswith("\n") else body + "\n"


def encode_lines(text: str) -> bytes:
    """Quoted-printable of whole lines (``text`` ends with a line break), CRLF endings."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


class PreparedBody:
    """A body whose marker lines are filled in and encoded per message, the rest once."""

    def __init__(self, body: str, markers: tuple[str, ...]) -> None:
        self.markers = markers
        self.pieces: list[bytes | str] = []
        static: list[str] = []
        lines = normalise(body).split("\n")[:-1]
        # a body without a final line break whose last line is a marker: filled with ""
        # that line is no line at all (normalise adds the break only to a non-empty end)
        open_end = not body.replace("\r\n", "\n").replace("\r", "\n").endswith("\n")
        for n, line in enumerate(lines):
            if any(m in line for m in markers):
                if static:
                    self.pieces.append(encode_lines("".join(static)))
                    static = []
                last_open = open_end and n == len(lines) - 1
                self.pieces.append(line if last_open else line + "\n")
            else:
                static.append(line + "\n")
        if static:
            self.pieces.append(encode_lines("".join(static)))

    def encode(self, values: Mapping[str, str]) -> bytes:
        out: list[bytes] = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            for marker, value in values.items():
                piece = piece.replace(marker, value)
            if piece or not out:  # an empty open last line after others adds nothing
                out.append(encode_lines(normalise(piece)))
        return b"".join(out)
