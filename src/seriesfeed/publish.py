"""Write feed documents and pages under a folder that mirrors their URL paths.

Each file is written atomically (a temporary file in the same folder, fsync, rename) and
only when its bytes changed, so a rebuild with nothing new touches nothing and a reader
never sees half a file. ETags are a hash of the bytes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from seriesfeed.errors import SeriesfeedError
from seriesfeed.feeds import FeedDocument

__all__ = ["PublishReport", "etag_of", "publish", "target_path", "write_if_changed"]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class PublishReport:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: bool = False  # nothing changed since the last build: nothing generated

    def __str__(self) -> str:
        if self.skipped:
            return f"nothing changed since the last build in {self.out_dir}"
        return (f"{len(self.written)} files written, {self.unchanged} unchanged "
                f"in {self.out_dir}")


def target_path(out_dir: Path, url_path: str) -> Path:
    relative = url_path.lstrip("/")
    if relative.endswith("/") or not relative:
        relative += "index.html"
    target = (out_dir / relative).resolve()
    if out_dir.resolve() not in target.parents:
        raise SeriesfeedError(f"refusing to write outside {out_dir}: {url_path}")
    return target


def write_if_changed(path: Path, body: bytes) -> bool:
    """Atomically replace ``path`` with ``body`` unless it already holds those bytes."""
    try:
        if path.read_bytes() == body:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return True


def publish(documents: list[FeedDocument], out_dir: Path) -> PublishReport:
    report = PublishReport(out_dir)
    try:
        for doc in documents:
            if write_if_changed(target_path(out_dir, doc.path), doc.body):
                report.written.append(doc.path)
            else:
                report.unchanged += 1
    except OSError as exc:
        raise SeriesfeedError(f"cannot write the feeds to {out_dir}: {exc}") from exc
    return report
