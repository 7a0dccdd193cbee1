"""Attacks on the session's changes from outside their own tests (batched publish, lazy
command modules, the SQLite date fast path, the whole-site read), on real files and
processes: each test here failed on the code it was written against."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seriesfeed.errors import SeriesfeedError
from seriesfeed.feeds import FeedDocument
from seriesfeed.publish import publish, read_manifest
from tests.conftest import SEED_PAGE
from tests.harness.builds import Tmpfs
from tests.harness.builds import cli as _cli

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_path_planned_twice_ends_with_its_last_body_when_the_disk_already_holds_it(
        tmp_path: Path) -> None:
    """The second build of the same plan must leave what the first (cold) one did: the
    file already holds the last body, so that body is "unchanged", but the first body,
    pending in the same batch, must not then be renamed over it."""
    out = tmp_path / "out"
    plan = [FeedDocument("/a/", "text/html", b"first", WHEN),
            FeedDocument("/a/", "text/html", b"second", WHEN)]
    publish(plan, out)
    cold = (out / "a/index.html").read_bytes()
    assert cold == b"second"
    publish(plan, out)
    assert (out / "a/index.html").read_bytes() == cold
    assert list(out.rglob("*.tmp")) == []


def _docs(version: int, count: int = 300) -> list[FeedDocument]:
    return [FeedDocument(f"/en/s/{i}/", "text/html", f"<p>{i} v{version}</p>".encode() * 40,
                         WHEN, key=f"k{i}-{version}") for i in range(count)]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".seriesfeed-")}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_running_out_of_inodes_mid_batch_leaves_no_temporary_file_and_recovers(
        tmp_path: Path) -> None:
    """ENOSPC at the open of a temporary file (no inode left), not at a write: the
    batch's other temporary files go, the manifest names nothing unwritten, and with
    inodes again the folder is a cold build's."""
    cold = tmp_path / "cold"
    publish(_docs(1), cold)
    disk = tmp_path / "disk"
    with Tmpfs(disk, "size=64m,nr_inodes=400") as fs:
        out = disk / "out"
        with pytest.raises(SeriesfeedError, match="No space left"):
            publish(_docs(1), out)
        assert list(out.rglob("*.tmp")) == []
        manifest = read_manifest(out).files
        assert all((out / p.strip("/") / "index.html").exists() for p in manifest)
        # inodes again: the build finishes what the failed one left
        fs.remount("nr_inodes=100000")
        publish(_docs(1), out)
        assert _files(out) == _files(cold)
        assert list(out.rglob("*.tmp")) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="dropping to another user needs root and setpriv")
def test_a_folder_the_build_may_not_write_fails_with_one_line_and_no_temporary_file(
        ) -> None:
    """As a user who owns the output but finds one folder read-only (root ignores the
    mode, so the build runs as nobody): one line, exit 1, nothing left behind; with
    the mode back the next build is a cold build."""
    # not under pytest's own folder, which only root may enter
    tmp_path = Path(tempfile.mkdtemp(prefix="seriesfeed-nobody-"))
    try:
        _run_as_nobody(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _run_as_nobody(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/store.sqlite3"\n'
                      '[site]\narticle_pages = "local"\n', encoding="utf-8")
    store = tmp_path / "store.sqlite3"
    _cli(config, "import", str(SEED_PAGE))
    out, cold = tmp_path / "out", tmp_path / "cold"
    _cli(config, "feeds", "build", "--out", str(cold))
    _cli(config, "feeds", "build", "--out", str(out))
    subprocess.run(["chown", "-R", "nobody", str(tmp_path)], check=True)
    assert store.exists()

    def build(title: str | None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(tmp_path)}
        if title is not None:
            env["SERIESFEED_SITE_TITLE"] = title
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, "-m", "seriesfeed", "--config", str(config),
                               "feeds", "build", "--out", str(out)],
                              capture_output=True, text=True, timeout=300, env=env,
                              check=False)

    folder = next(p.parent for p in sorted(out.rglob("index.html")) if p.parent != out)
    folder.chmod(0o555)
    try:
        proc = build("Another title")
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("Error: cannot write the feeds") and \
        f"Permission denied: '{folder}/." in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert list(out.rglob("*.tmp")) == []
    proc = build(None)
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == _files(cold)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("room", ["blocks", "inodes"])
def test_a_rebuild_that_fits_one_file_at_a_time_fits_in_batches_too(
        tmp_path: Path, room: str) -> None:
    """A disk with room for one more file but not for a batch's temporary files: each
    rename frees the file it replaces, so writing one file at a time (before batches)
    rebuilt the whole folder there; the batch must not fail where that succeeded."""
    disk = tmp_path / "disk"
    with Tmpfs(disk, "size=64m,nr_inodes=100000") as fs:
        out = disk / "out"
        publish(_docs(1), out)
        if room == "inodes":
            used = sum(1 for _ in disk.rglob("*")) + 1  # the root too
            fs.remount(f"nr_inodes={used + 8}")
        else:
            st = os.statvfs(disk)
            with open(disk / "filler", "wb") as fh:  # leaves 64 KB: a few pages' worth
                fh.write(b"\0" * (st.f_bavail * st.f_frsize - 65536))
        report = publish(_docs(2), out)
        assert len(report.written) == len(_docs(2))
        assert _files(out) == {f"en/s/{i}/index.html": d.body
                               for i, d in enumerate(_docs(2))}
        assert list(out.rglob("*.tmp")) == []
