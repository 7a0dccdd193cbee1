"""Write feed documents and pages under a folder that mirrors their URL paths.

Each file is written atomically (a temporary file in the same folder, fsync, rename) and
only when its bytes changed, so a rebuild with nothing new touches nothing and a reader
never sees half a file. ETags are a hash of the bytes.

Beside the files, ``.seriesfeed-manifest.json`` records for each document that has a key
(a digest of every input of its bytes: archive pages, article pages) the key and the
size and modification time of the file written. The next build, in any process, reads it
(``on_disk``) and does not make again a document whose key and file are unchanged: the
folder is the piece cache's storage, the manifest its index. A file changed or removed by
anyone else no longer matches its record and is made and compared as usual.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from seriesfeed.errors import SeriesfeedError
from seriesfeed.feeds import FeedDocument

__all__ = ["MANIFEST", "PublishReport", "etag_of", "on_disk", "publish", "reader",
           "still_written", "target_path", "write_if_changed"]

MANIFEST = ".seriesfeed-manifest.json"
_FORMAT = 1


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class PublishReport:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    spliced: int = 0  # of ``written``: made from the earlier file, not rendered
    skipped: bool = False  # nothing changed since the last build: nothing generated

    def __str__(self) -> str:
        if self.skipped:
            return f"nothing changed since the last build in {self.out_dir}"
        spliced = f" ({self.spliced} spliced)" if self.spliced else ""
        return (f"{len(self.written)} files written{spliced}, {self.unchanged} unchanged "
                f"in {self.out_dir}")


def target_path(out_dir: Path, url_path: str) -> Path:
    relative = url_path.lstrip("/")
    if relative.endswith("/") or not relative:
        relative += "index.html"
    target = (out_dir / relative).resolve()
    if out_dir.resolve() not in target.parents:
        raise SeriesfeedError(f"refusing to write outside {out_dir}: {url_path}")
    return target


def write_if_changed(path: Path, body: bytes, *, differs: bool = False) -> bool:
    """Atomically replace ``path`` with ``body`` unless it already holds those bytes
    (``differs``: the caller knows it does not; the file is not read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_if_changed(os.fspath(path), body, differs=differs)


def _write_if_changed(path: str, body: bytes, *, differs: bool = False) -> bool:
    """``write_if_changed`` for a path whose folder exists, in plain ``os`` calls: a
    file of another size is not read, and a missing one costs a ``stat``, not an open
    that raises. (Through pathlib and buffered files this was most of the user CPU of
    writing 20,000 pages; the fsync stays: each file is on disk before it is renamed.)"""
    if not differs:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = -1
        if size == len(body):
            with open(path, "rb") as fh:
                if fh.read() == body:
                    return False
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


class _Targets:
    """``target_path`` for many documents: each folder resolved once, from its parent's
    resolution and one ``lstat`` of its own name (resolving every file's whole path was a
    sixth of a rebuild of 20,000 article pages, each in a folder of its own)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.root = out_dir.resolve()
        self.folders: dict[str, Path] = {"": self.root}

    def _folder(self, folder: str, url_path: str) -> Path:
        found = self.folders.get(folder)
        if found is not None:
            return found
        parent, _, name = folder.rpartition("/")
        if name in ("", ".", ".."):
            raise SeriesfeedError(f"refusing to write outside {self.out_dir}: {url_path}")
        found = self._folder(parent, url_path) / name
        if found.is_symlink():  # it may lead anywhere: follow it and check where
            found = found.resolve()
            if self.root not in found.parents:
                raise SeriesfeedError(f"refusing to write outside {self.out_dir}: {url_path}")
        self.folders[folder] = found
        return found

    def __call__(self, url_path: str) -> Path:
        relative = url_path.lstrip("/")
        if relative.endswith("/") or not relative:
            relative += "index.html"
        folder, _, name = relative.rpartition("/")
        if name in (".", "..") or "\0" in relative:
            return target_path(self.out_dir, url_path)
        return self._folder(folder, url_path) / name


def reader(out_dir: Path) -> Callable[[str], bytes | None]:
    """The bytes of the file a document's URL path has in ``out_dir`` (None when there is
    none or it cannot be read): what a planner splices a changed page from."""
    targets = _Targets(out_dir)

    def read(url_path: str) -> bytes | None:
        try:
            return targets(url_path).read_bytes()
        except (OSError, SeriesfeedError):
            return None

    return read


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _read_manifest(out_dir: Path) -> dict[str, list[object]]:
    try:
        data = json.loads((out_dir / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def on_disk(out_dir: Path) -> dict[str, str]:
    """URL path -> key of the documents whose file in ``out_dir`` is still the one an
    earlier build wrote (same size and modification time as recorded)."""
    return {path: str(record[0]) for path, record in still_written(out_dir).items()}


def still_written(out_dir: Path) -> dict[str, list[object]]:
    """URL path -> manifest record (key, size, mtime) of the documents whose file in
    ``out_dir`` is still the one an earlier build wrote. Plain strings and one ``stat``
    per file: this runs over every page of the site on every build; ``publish`` takes it
    back, so the manifest is read once per build."""
    root = os.fspath(out_dir)
    found: dict[str, list[object]] = {}
    for path, record in _read_manifest(out_dir).items():
        if not (isinstance(record, list) and len(record) == 3 and isinstance(record[0], str)):
            continue
        relative = path.lstrip("/")
        if relative.endswith("/") or not relative:
            relative += "index.html"
        if "\0" in relative or any(part in (".", "..") for part in relative.split("/")):
            continue  # never a path a build writes
        try:
            st = os.stat(os.path.join(root, relative))
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns) == (record[1], record[2]):
            found[path] = record
    return found


def publish(documents: list[FeedDocument], out_dir: Path,
            recorded: dict[str, list[object]] | None = None) -> PublishReport:
    """Write ``documents`` under ``out_dir`` and its manifest; ``recorded``: the
    ``still_written`` records the documents were planned against (read again when not
    given), whose entries the documents planned as on disk keep."""
    report = PublishReport(out_dir)
    if recorded is None and any(d.on_disk for d in documents):
        recorded = _read_manifest(out_dir)
    old = recorded or {}
    files: dict[str, list[object]] = {}
    try:
        targets = _Targets(out_dir)
        made: set[Path] = set()
        for doc in documents:
            if doc.on_disk:  # planned as unchanged: its file holds these bytes
                report.unchanged += 1
                if doc.path in old:  # under the key it was planned with (the same bytes)
                    files[doc.path] = [doc.key or old[doc.path][0], *old[doc.path][1:]]
                continue
            target = targets(doc.path)
            folder = target.parent
            if folder not in made:  # once per folder: most hold one page
                folder.mkdir(parents=True, exist_ok=True)
                made.add(folder)
            if _write_if_changed(os.fspath(target), doc.body, differs=doc.spliced):
                report.written.append(doc.path)
                report.spliced += doc.spliced
            else:
                report.unchanged += 1
            if doc.key:
                stat = _stat(target)
                if stat is not None:
                    files[doc.path] = [doc.key, *stat]
        # the index last, after every file it names: a crash before it leaves the old
        # index, whose records no longer match what changed (each is checked by stat)
        write_if_changed(out_dir / MANIFEST, json.dumps(
            {"format": _FORMAT, "files": files}, separators=(",", ":"),
            sort_keys=True).encode("utf-8"))
    except OSError as exc:
        raise SeriesfeedError(f"cannot write the feeds to {out_dir}: {exc}") from exc
    return report
