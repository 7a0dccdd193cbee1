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
    "PreparedBody", "crlf_only", "dot_stuffed", "encode_lines", "normalise",
]


def normalise(body: str) -> str:
    """LF line endings and a final line break (what ``emails.qp_body`` encodes)."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body if body.endswith("\n") else body + "\n"


def encode_lines(text: str) -> bytes:
    """Quoted-printable of whole lines (``text`` ends with a line break), CRLF endings."""
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def crlf_only(data: bytes) -> bool:
    """Every CR and LF of ``data`` is in a CRLF pair. CRLF pairs never overlap, so that
    holds exactly when the CRs and LFs number twice the pairs: two passes at C speed."""
    return len(data) - len(data.translate(None, b"\r\n")) == 2 * data.count(b"\r\n")


def dot_stuffed(data: bytes) -> bytes | None:
    """``data`` (which begins a line) with a dot put before every line that begins with
    one (RFC 5321 4.5.2), or None when no line does (the bytes go as they are)."""
    if not data.startswith(b".") and b"\r\n." not in data:
        return None
    return (b"." + data if data.startswith(b".") else data).replace(b"\r\n.", b"\r\n..")


class PreparedBody:
    """A body whose marker lines are filled in and encoded per message, the rest once.
    The values are links: one line each, never empty (an empty value, or one beginning
    with a line feed, right after a lone CR would make two line breaks where the whole
    body has one)."""

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
        # for SMTP: each encoded piece is whole lines, so it can be proven CRLF-only and
        # dot-stuffed on its own; the pieces shared by every message are done here, once
        self.stuffed: dict[int, bytes | None] = {
            n: dot_stuffed(p) for n, p in enumerate(self.pieces)
            if isinstance(p, bytes) and crlf_only(p)}

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

    def encode_wire(self, values: Mapping[str, str]) -> tuple[bytes, bytes | None] | None:
        """:meth:`encode`'s bytes and the same dot-stuffed for SMTP DATA (None when no line
        begins with a dot), without scanning the shared pieces again; None when a piece is
        not CRLF-only (never for what :func:`encode_lines` makes: then the caller's
        transport checks the whole message as before)."""
        out: list[bytes] = []
        wire: list[bytes] = []
        stuffed_any = False
        for n, piece in enumerate(self.pieces):
            if isinstance(piece, bytes):
                if n not in self.stuffed:
                    return None
                done = self.stuffed[n]
            else:
                for marker, value in values.items():
                    piece = piece.replace(marker, value)
                if not piece and out:  # an empty open last line after others adds nothing
                    continue
                piece = encode_lines(normalise(piece))
                if not crlf_only(piece):
                    return None
                done = dot_stuffed(piece)
            out.append(piece)
            wire.append(piece if done is None else done)
            stuffed_any = stuffed_any or done is not None
        return b"".join(out), (b"".join(wire) if stuffed_any else None)
