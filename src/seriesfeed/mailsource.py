"""Incoming mail read from a Maildir, an mbox or single files, within bounds.

Each message is offered as raw bytes with a cheap look at its head first, so mail that
cannot be a report is never parsed in full; a message is parsed only under caps on size
and MIME nesting, and one that cannot be read is set aside (a Maildir's
``.seriesfeed-unreadable`` folder) instead of stopping everything after it.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import logging
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from seriesfeed.errors import ImportError_

__all__ = [
    "MAX_HEAD", "MAX_MESSAGE", "MAX_NESTING", "MAX_PARTS", "UNREADABLE_FOLDER", "Incoming",
    "could_be_report", "incoming", "parse_bounded",
]

log = logging.getLogger("seriesfeed.bounces")
MAX_MESSAGE = 10 * 1024 * 1024
MAX_HEAD = 64 * 1024  # headers beyond this are not a report's: it is read in full instead
# A report nests two or three levels (report, returned message, its alternative parts). The
# email package parses and walks nesting by recursion, and a few thousand levels exhaust the
# interpreter's stack, so a message is refused well before that.
MAX_NESTING = 100
MAX_PARTS = 1000
UNREADABLE_FOLDER = ".seriesfeed-unreadable"  # a Maildir++ folder: mail clients show it

_NESTING = re.compile(rb"boundary\s*=|content-type\s*:\s*message/", re.IGNORECASE)
_PARTS = re.compile(rb"^content-type\s*:", re.IGNORECASE | re.MULTILINE)
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_SUBJECT = re.compile(
    r"undeliver|not (?:be )?delivered|delivery (?:status|fail|notif|report|problem|error|"
    r"delayed|has failed|incomplete)|returned mail|returned to sender|return(?:ed)? receipt|"
    r"failure notice|mail delivery|mail system error|non.?deliver|nondeliver|warning: message|"
    r"\bdelayed\b|bounce|could not send|permanent error|message not delivered|rejected|"
    r"complaint|abuse|feedback.report|unzustellbar|no entregado|non recapitabile|"
    r"non remis|echec|échec", re.IGNORECASE)
# the header fields the look at a head needs, each with its continuation lines
_FIELD = re.compile(rb"^(from|sender|return-path|subject|content-type|x-failed-recipients)"
                    rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_DAEMON = re.compile(rb"(?:^|[<\s\"',:])(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon|"
                     rb"mdaemon)(?:@|>|\s*$)", re.IGNORECASE)


def could_be_report(head: bytes) -> bool:
    """Whether a message with this head may be a delivery or feedback report. False only
    for mail that is surely neither: not from a mailer daemon, a postmaster or the null
    sender, not a multipart/report, no failed-recipients header and no bounce-like subject.
    Read with a few regular expressions over the bytes, not the email parser: this is what
    every ordinary message in the mailbox costs."""
    for found in _FIELD.finditer(head):
        name, value = found.group(1).lower(), found.group(2)
        if name == b"x-failed-recipients":
            return True
        if name == b"content-type":
            if b"multipart/report" in value.lower():
                return True
        elif name == b"subject":
            text = value.decode("utf-8", "replace")
            if _SUBJECT.search(_decoded(" ".join(text.split()))):
                return True
        elif name == b"return-path" and value.strip() in (b"<>", b""):
            return True  # the null envelope sender: what every bounce is sent from
        elif _DAEMON.search(value.strip()):
            return True
    return False


def _decoded(text: str) -> str:
    """A header with its RFC 2047 encoded words decoded ("=?utf-8?B?RGVsaXZlcnk…?=")."""
    if "=?" not in text:
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


def parse_bounded(data: bytes, where: str) -> Message:
    """The parsed message, or ImportError_ when it is too large or too deeply nested to be
    read safely (a report is small and shallow)."""
    if len(data) > MAX_MESSAGE:
        raise ImportError_(f"larger than {MAX_MESSAGE // (1024 * 1024)} MB", path=where)
    for nesting, _ in enumerate(_NESTING.finditer(data), start=1):
        if nesting > MAX_NESTING:
            raise ImportError_(f"more than {MAX_NESTING} nested MIME parts", path=where)
    for parts, _ in enumerate(_PARTS.finditer(data), start=1):
        if parts > MAX_PARTS:
            raise ImportError_(f"more than {MAX_PARTS} MIME parts", path=where)
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except (RecursionError, MemoryError) as err:
        raise ImportError_(f"cannot be parsed ({type(err).__name__})", path=where) from err


def _head_of(data: bytes) -> bytes:
    end = _END_OF_HEAD.search(data, 0, MAX_HEAD)
    return data[:end.end()] if end else data[:MAX_HEAD]


@dataclass
class Incoming:
    """One message found under the path: its bytes, and what to do with it once handled."""

    where: str  # for logs and errors: the file, or the mbox and the message's number
    _path: Path | None = None  # a file of its own (Maildir or single file)
    _data: bytes | None = None  # already read (an mbox message)
    _maildir: Path | None = None  # the Maildir it sits in: it is marked seen or set aside

    def head(self) -> bytes:
        if self._data is not None:
            return _head_of(self._data)
        assert self._path is not None
        with self._path.open("rb") as fh:
            start = fh.read(8192)
            if _END_OF_HEAD.search(start):
                return _head_of(start)
            return _head_of(start + fh.read(MAX_HEAD - len(start)))

    def raw(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self._path is not None
        if self._path.stat().st_size > MAX_MESSAGE:
            raise ImportError_(f"larger than {MAX_MESSAGE // (1024 * 1024)} MB",
                               path=self.where)
        return self._path.read_bytes()

    def done(self) -> None:
        """Handled: a Maildir message moves to cur/ with the seen flag, so it is read once."""
        if self._maildir is None or self._path is None:
            return
        name, _, flags = self._path.name.partition(":2,")
        if "S" in flags and self._path.parent.name == "cur":
            return
        target = self._maildir / "cur" / f"{name}:2,{''.join(sorted(set(flags + 'S')))}"
        os.replace(self._path, target)

    def set_aside(self) -> str | None:
        """Unreadable: a Maildir message moves to the ``.seriesfeed-unreadable`` folder's
        new/ (so a mail client shows it unread); elsewhere it stays where it is."""
        if self._maildir is None or self._path is None:
            return None
        folder = self._maildir / UNREADABLE_FOLDER
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "maildirfolder").touch()
        target = folder / "new" / self._path.name.partition(":2,")[0]
        os.replace(self._path, target)
        return str(target)


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _maildir(path: Path) -> Iterator[Incoming]:
    # new/ and the unseen messages of cur/, oldest first (Maildir names start with the time);
    # reading file names, not messages, so a large Maildir is listed cheaply
    names: list[tuple[str, Path]] = []
    for sub in ("new", "cur"):
        with os.scandir(path / sub) as found:
            for item in found:
                if item.name.startswith(".") or not item.is_file():
                    continue
                if sub == "cur" and "S" in item.name.partition(":2,")[2]:
                    continue  # processed before
                names.append((item.name, Path(item.path)))
    for name, file in sorted(names):
        yield Incoming(f"{path.name}/{file.parent.name}/{name}", _path=file, _maildir=path)


def _mbox(path: Path) -> Iterator[Incoming]:
    box = mailbox.mbox(path, create=False)
    try:
        for n, key in enumerate(box.keys(), start=1):
            yield Incoming(f"{path}#{n}", _data=box.get_bytes(key, from_=False))
    finally:
        box.close()


def incoming(path: Path) -> Iterator[Incoming]:
    """Every message under ``path``: a Maildir, a folder of single-message files, an mbox
    (starts with ``From ``) or one message file."""
    if _is_maildir(path):
        yield from _maildir(path)
    elif path.is_dir():
        for child in sorted(p for p in path.iterdir() if p.is_file()):
            yield Incoming(str(child), _path=child)
    else:
        with path.open("rb") as fh:
            start = fh.read(5)
        if start == b"From ":
            yield from _mbox(path)
        else:
            yield Incoming(str(path), _path=path)
