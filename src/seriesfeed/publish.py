"""Write feed documents and pages under a folder that mirrors their URL paths.

Each file is written atomically (a temporary file in the same folder, fsync, rename; in
batches: a batch's temporary files written, then each fsynced, then each renamed) and
only when its bytes changed, so a rebuild with nothing new touches nothing and a reader
never sees half a file. ETags are a hash of the bytes.

Beside the files, ``.seriesfeed-manifest.json`` records for each document written the
key (a digest of every input of its bytes: archive pages, article pages; empty for the
others) and the identity of the file written: size, modification time, inode and change
time. The next build, in any process, reads it (``still_written``) and does not make again a
document whose key and file are unchanged: the folder is the piece cache's storage, the
manifest its index. A file changed, replaced or removed by anyone else no longer matches
its record (size and mtime a hand can put back, ``touch -d``; the inode and the change
time it cannot) and is made and compared as usual; a recorded file that no document
names any more (a removed entry's page) is removed while it is still as written.

A build holds a lock on the folder (``locked``): two at once would sweep each other's
temporary files and interleave their records.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from seriesfeed.errors import SeriesfeedError
from seriesfeed.feeds import FeedDocument

__all__ = ["MANIFEST", "Manifest", "PublishReport", "etag_of", "locked",
           "publish", "read_manifest", "reader", "still_written", "sweep_temporary",
           "target_path", "write_if_changed"]

MANIFEST = ".seriesfeed-manifest.json"
# 2: records hold the inode and change time too, and the build's stamp; a format 1
# manifest (size and mtime only, keyed documents only) is not believed: one full build
_FORMAT = 2
_TEMPORARY = re.compile(r"\..+\.\d+\.tmp\Z", re.DOTALL)  # write_if_changed's names


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


def _held(path: Path) -> bytes | None:
    """The bytes of ``path`` when it is a file of its own, None when it is missing or a
    symlink (which a build replaces by a file even when it leads to the same bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with open(fd, "rb") as fh:
        return fh.read()


def write_if_changed(path: Path, body: bytes, *, differs: bool = False) -> bool:
    """Atomically replace ``path`` with ``body`` unless it already holds those bytes
    (``differs``: the caller knows it does not; the file is not read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_if_changed(os.fspath(path), body, differs=differs)


def _write_if_changed(path: str, body: bytes, *, differs: bool = False) -> bool:
    """``write_if_changed`` for a path whose folder exists: one file through ``_Batch``."""
    with _Batch() as batch:
        started = batch.add(path, body, differs=differs)
    return started


def _holds(path: str, body: bytes) -> bool:
    """Whether ``path`` is a file of its own holding ``body``, in plain ``os`` calls: a
    file of another size is not read, and a missing one costs a ``stat``, not an open
    that raises. Only a file of its own counts: a symlink is replaced by a file even
    when it leads to the same bytes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_size == len(body)
            and _held(Path(path)) == body)


class _Batch:
    """Files replaced atomically, many at a time: each body goes to a temporary file
    beside its target (``.NAME.PID.tmp``); ``flush`` then fsyncs every temporary file,
    and only then renames each over its target. Each file is on disk before it is
    renamed, as with one file at a time, but the kernel's work for the writes and for
    the flushes is done in runs (a batch of 128 spent about a third less system time
    than write, fsync, rename file by file, over 5,000 pages). Plain ``os`` calls:
    through pathlib and buffered files this was most of the user CPU of writing 20,000
    pages. A temporary file that cannot be finished (a full disk) or that an error
    leaves unrenamed is removed, never left beside its file; a disk with room for one
    file but not a batch's gets the pending ones put in place first (``add``)."""

    SIZE = 128  # temporary files open at once, well under any descriptor limit

    def __init__(self) -> None:
        self.pending: list[tuple[int, str, str]] = []  # (fd, temporary, target)
        self.targets: set[str] = set()  # the targets of ``pending``

    def __enter__(self) -> _Batch:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.flush()
        else:
            self.discard()

    def add(self, path: str, body: bytes, *, differs: bool = False) -> bool:
        """Start replacing ``path`` with ``body``, unless it already holds those bytes
        (``differs``: the caller knows it does not; the file is not read). True when
        started; the file is replaced by the next ``flush``."""
        if path in self.targets:
            # the same file twice: its temporary name too, so one at a time; and first,
            # so that the body is compared with the pending one, not the file it replaces
            self.flush()
        if not differs and _holds(path, body):
            return False
        try:
            self._start(path, body)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self.pending:
                raise
            # room for one file at a time but not for a batch's temporary files: put
            # the pending ones in place (each rename frees the file it replaces), then
            # this one alone, as writing file by file did on a nearly full disk
            self.flush()
            self._start(path, body)
        if len(self.pending) >= self.SIZE:
            self.flush()
        return True

    def _start(self, path: str, body: bytes) -> None:
        """Write ``body`` to ``path``'s temporary file, pending; a file that cannot be
        written whole is removed before the error goes on."""
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.pending.append((fd, tmp, path))
        self.targets.add(path)

    def flush(self) -> None:
        """Put every pending file on disk, then in its place."""
        pending, self.pending = self.pending, []
        self.targets = set()
        try:
            for i, (fd, tmp, path) in enumerate(pending):
                os.fsync(fd)
                pending[i] = (-1, tmp, path)  # before close: released even when it fails
                os.close(fd)
            for i, (_fd, tmp, path) in enumerate(pending):
                os.replace(tmp, path)
                pending[i] = (-1, "", path)
        except BaseException:
            self.pending = pending  # what is left: closed and removed
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove every temporary file not yet renamed."""
        pending, self.pending = self.pending, []
        self.targets = set()
        for fd, tmp, _path in pending:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold the build lock of ``out_dir`` (a flock on the folder itself, so nothing is
    added to it), waiting for a build that holds it; the folder is made if missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it


def sweep_temporary(out_dir: Path) -> int:
    """Remove what ``write_if_changed`` leaves when its process is killed between its
    write and its rename (``.NAME.PID.tmp``); the caller holds the lock, so none is in
    use. A walk of the whole folder: only after a build that did not finish."""
    removed = 0
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if _TEMPORARY.match(name):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


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


def _identity(st: os.stat_result) -> list[object]:
    """What a record holds of a file: size and mtime, which anyone may set back, and the
    inode and change time, which only a new file or a change moves (a rename in gives a
    new inode; an edit, a ``touch -d`` or a chmod a new change time)."""
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _stat(path: str | Path) -> list[object] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return _identity(st)


def _relative(path: str) -> str | None:
    """The file a document's URL path is written to, relative to the folder; None for a
    path no build writes (``..``, ``.``, an empty part, NUL)."""
    relative = path.lstrip("/")
    if relative.endswith("/") or not relative:
        relative += "index.html"
    # an empty, "." or ".." part needs "//", a leading "." or "/.": most paths have none
    if ("//" in relative or "/." in relative or relative[0] == ".") and \
            any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    return None if "\0" in relative else relative


@dataclass
class Manifest:
    """The manifest as read: the stamp of the build that wrote it (``""``: none), and its
    records, URL path -> [key, size, mtime, inode, ctime], unchecked."""
    stamp: str = ""
    files: dict[str, object] = field(default_factory=dict)


def read_manifest(out_dir: Path) -> Manifest:
    """``out_dir``'s manifest, or an empty one when it is missing, not ours or damaged
    (anything but our JSON, however deep or large, is no manifest)."""
    try:
        data = json.loads((out_dir / MANIFEST).read_bytes())
    except (OSError, ValueError, RecursionError):
        return Manifest()
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return Manifest()
    files, stamp = data.get("files"), data.get("stamp")
    return Manifest(stamp if isinstance(stamp, str) else "",
                    files if isinstance(files, dict) else {})


def still_written(out_dir: Path, manifest: Manifest | None = None) -> dict[str, list[object]]:
    """URL path -> manifest record (key, size, mtime, inode, ctime) of the documents whose
    file in ``out_dir`` is still the one an earlier build wrote (``manifest``: read when
    not given). Plain strings and one ``lstat`` per file: this runs over every page of
    the site on every build; ``publish`` takes it back, so the manifest is read once per
    build."""
    root = os.fspath(out_dir)
    found: dict[str, list[object]] = {}
    for path, record in (manifest or read_manifest(out_dir)).files.items():
        if not (isinstance(record, list) and len(record) == 5 and isinstance(record[0], str)):
            continue
        relative = _relative(path)
        if relative is None:
            continue  # never a path a build writes
        try:
            st = os.lstat(os.path.join(root, relative))
        except OSError:
            continue
        if _identity(st) == record[1:]:
            found[path] = record
    return found


def _remove_stale(out_dir: Path, targets: _Targets, stale: dict[str, list[object]],
                  kept: set[str]) -> None:
    """Remove the files an earlier build wrote for documents there are no more (a removed
    entry's page), each only while still as written, then their folders left empty."""
    folders: set[Path] = set()
    for path, record in stale.items():
        relative = _relative(path)
        if relative is None or os.path.normpath(relative) != relative or relative in kept:
            continue  # another spelling of a file a document has: never removed
        try:
            target = targets(path)
            if _stat(target) != record[1:]:
                continue
            target.unlink()
        except (OSError, SeriesfeedError):
            continue
        folders.add(target.parent)
    root = targets.root
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()  # only when empty: nothing of anyone else's goes
            except OSError:
                break
            folder = folder.parent


def publish(documents: list[FeedDocument], out_dir: Path,
            recorded: dict[str, list[object]] | None = None, stamp: str = "",
            ) -> PublishReport:
    """Write ``documents`` under ``out_dir``, remove the files of recorded documents that
    are gone, and write its manifest; ``recorded``: the ``still_written`` records the
    documents were planned against (read again when not given), whose entries the
    documents planned as on disk keep; ``stamp``: what the manifest says the folder was
    built from (``build_feeds``)."""
    report = PublishReport(out_dir)
    if recorded is None:
        recorded = still_written(out_dir)
    old = recorded
    files: dict[str, list[object]] = {}
    try:
        targets = _Targets(out_dir)
        made: set[Path] = set()
        started: list[tuple[FeedDocument, str]] = []
        with _Batch() as batch:
            for doc in documents:
                if doc.on_disk:  # planned as unchanged: its file holds these bytes
                    report.unchanged += 1
                    if doc.path in old:  # under the key it was planned with (same bytes)
                        files[doc.path] = [doc.key or old[doc.path][0], *old[doc.path][1:]]
                    continue
                target = targets(doc.path)
                folder = target.parent
                if folder not in made:  # once per folder: most hold one page
                    folder.mkdir(parents=True, exist_ok=True)
                    made.add(folder)
                path = os.fspath(target)
                if batch.add(path, doc.body, differs=doc.spliced):
                    started.append((doc, path))
                    continue
                report.unchanged += 1
                identity = _stat(target)
                if identity is not None:
                    files[doc.path] = [doc.key or "", *identity]
        # every file in place: what each now is, as the next build will check it
        for doc, path in started:
            report.written.append(doc.path)
            report.spliced += doc.spliced
            identity = _stat(path)
            if identity is not None:
                files[doc.path] = [doc.key or "", *identity]
        kept = {_relative(doc.path) for doc in documents}
        _remove_stale(out_dir, targets, {p: r for p, r in old.items() if p not in files},
                      {k for k in kept if k is not None})
        # the index last, after every file it names: a crash before it leaves the old
        # index, whose records no longer match what changed (each is checked by stat)
        write_if_changed(out_dir / MANIFEST, json.dumps(
            {"format": _FORMAT, "stamp": stamp, "files": files}, separators=(",", ":"),
            sort_keys=True).encode("utf-8"))
    except OSError as exc:
        raise SeriesfeedError(f"cannot write the feeds to {out_dir}: {exc}") from exc
    return report
