"""publish writes files in batches (temporary files written, then each fsynced, then each
renamed): what a reader, a full disk and a plan with odd paths see of that, on real files."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seriesfeed.errors import SeriesfeedError
from seriesfeed.feeds import FeedDocument
from seriesfeed.publish import _Batch, _relative, publish, read_manifest, still_written
from tests.harness.builds import Tmpfs
from tests.harness.figures import tier

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
COUNT = _Batch.SIZE * 2 + 17  # crosses two batch boundaries


def _docs(version: int, count: int = COUNT, size: int = 3000) -> list[FeedDocument]:
    return [FeedDocument(f"/en/s/{i}/", "text/html",
                         (f"<p>{i} v{version} ".encode() * (size // 12))[:size], WHEN,
                         key=f"k{i}-{version}")
            for i in range(count)]


def _temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*.tmp")]


def test_every_file_of_several_batches_is_in_place_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    docs = _docs(1)
    report = publish(docs, out)
    assert report.written == [d.path for d in docs]  # in the plan's order
    for d in docs:
        assert (out / d.path.strip("/") / "index.html").read_bytes() == d.body
    assert _temporaries(out) == []
    # every record matches its file as it is now: the next build trusts all of them
    recorded = still_written(out)
    assert set(recorded) == {d.path for d in docs}
    assert {p: r[0] for p, r in recorded.items()} == {d.path: d.key for d in docs}
    # unchanged bytes: nothing written again
    again = publish(_docs(1), out)
    assert again.written == [] and again.unchanged == COUNT


def test_a_reader_sees_only_whole_old_or_whole_new_files_during_a_rebuild(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    old, new = _docs(1, size=20_000), _docs(2, size=20_000)
    publish(old, out)
    allowed = {(out / d.path.strip("/") / "index.html"): {d.body, n.body}
               for d, n in zip(old, new, strict=True)}
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        rounds = 0
        while not done.is_set() and rounds < 200:  # bounded
            rounds += 1
            for path, bodies in allowed.items():
                body = path.read_bytes()
                if body not in bodies:
                    seen.append(f"{path}: {len(body)} bytes, neither version")
    reader = threading.Thread(target=read)
    reader.start()
    try:
        publish(new, out)
    finally:
        done.set()
        reader.join(timeout=60)
    assert seen == []
    assert all(p.read_bytes() == n.body for p, n in zip(allowed, new, strict=True))


def test_the_same_path_twice_in_one_plan_leaves_the_last_body(tmp_path: Path) -> None:
    out = tmp_path / "out"
    docs = _docs(1, count=5)
    twice = [*docs[:3], FeedDocument(docs[1].path, "text/html", b"second", WHEN, key="x"),
             *docs[3:]]
    publish(twice, out)
    assert (out / "en/s/1/index.html").read_bytes() == b"second"
    assert _temporaries(out) == []


def test_a_path_planned_again_with_the_bytes_already_on_disk_ends_with_those_bytes(
        tmp_path: Path) -> None:
    """The second body equals what the file held before the build: it is compared with
    the first body (pending in the batch), not with the old file, so it is written."""
    out = tmp_path / "out"
    path = "/en/s/1/"
    publish([FeedDocument(path, "text/html", b"old", WHEN, key="a")], out)
    plan = [FeedDocument(path, "text/html", b"new", WHEN, key="b"),
            FeedDocument(path, "text/html", b"old", WHEN, key="c")]
    publish(plan, out)
    assert (out / "en/s/1/index.html").read_bytes() == b"old"
    assert read_manifest(out).files[path][0] == "c"
    assert _temporaries(out) == []

    target = str(out / "en/s/1/index.html")
    with _Batch() as batch:
        assert batch.add(target, b"newer")
        assert batch.add(target, b"old")  # differs from the pending "newer"
    assert Path(target).read_bytes() == b"old"


def test_a_descriptor_whose_close_fails_is_not_closed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close(2) releases the descriptor even when it reports an error (EIO on a network
    file system): closing it again in the clean-up could close a descriptor another
    thread has opened under the same number since."""
    real_close = os.close
    closed: list[int] = []
    failing: list[int] = []

    ours: set[int] = set()

    def close(fd: int) -> None:
        if fd not in ours:  # another thread's (xdist's channel): left alone
            real_close(fd)
            return
        closed.append(fd)  # every call, also one that fails
        real_close(fd)
        if not failing:
            failing.append(fd)
            raise OSError(5, "Input/output error")

    targets = [str(tmp_path / f"f{i}") for i in range(3)]
    with pytest.raises(OSError, match="Input/output"), _Batch() as batch:
        for target in targets:
            batch.add(target, b"body")
        ours.update(fd for fd, _tmp, _path in batch.pending)
        monkeypatch.setattr(os, "close", close)
    monkeypatch.undo()
    assert failing and closed.count(failing[0]) == 1, closed
    assert len(closed) == 3  # the other two closed once each by the clean-up
    assert _temporaries(tmp_path) == [] and not any(Path(t).exists() for t in targets)


def test_an_error_midway_leaves_no_temporary_file_and_no_manifest_naming_unwritten_files(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    docs = _docs(1)
    # a folder where a page's file must go: its rename fails (EISDIR) after earlier
    # batches were renamed and while later files of its batch wait as temporaries
    blocked = out / "en/s/200/index.html"
    blocked.mkdir(parents=True)
    (blocked / "keep").write_text("mine")
    with pytest.raises(SeriesfeedError, match="cannot write the feeds"):
        publish(docs, out)
    assert _temporaries(out) == []
    assert (blocked / "keep").read_text() == "mine"
    assert read_manifest(out).files == {}  # no index of a build that did not finish
    # files renamed before the error hold whole bodies
    for d in docs[:_Batch.SIZE]:
        assert (out / d.path.strip("/") / "index.html").read_bytes() == d.body


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_disk_that_fills_in_the_middle_of_a_batch_leaves_no_temporary_file(
        tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    docs = _docs(1, size=8192)
    # room for about one and a half batches of the plan's files (tmpfs folders take none)
    size = 8192 * (_Batch.SIZE * 3 // 2)
    with Tmpfs(disk, f"size={size}") as fs:
        out = disk / "out"
        with pytest.raises(SeriesfeedError, match="No space left"):
            publish(docs, out)
        assert _temporaries(out) == []
        whole = [d for d in docs if (out / d.path.strip("/") / "index.html").exists()]
        assert whole, "no batch was renamed before the disk filled"
        assert all((out / d.path.strip("/") / "index.html").read_bytes() == d.body
                   for d in whole)
        fs.remount(f"size={size * 4}")
        report = publish(docs, out)
        assert len(report.written) + report.unchanged == len(docs)
        assert _temporaries(out) == []


def _relative_by_parts(path: str) -> str | None:
    """``publish._relative`` as it was written first: every part looked at."""
    relative = path.lstrip("/")
    if relative.endswith("/") or not relative:
        relative += "index.html"
    if "\0" in relative or any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    return relative


@settings(max_examples=tier(500, 20_000), deadline=None)
@given(st.lists(st.sampled_from(["", ".", "..", "a", ".well-known", "b.", "..c", "\0", "é"]),
                max_size=6).map("/".join).flatmap(
    lambda body: st.sampled_from([body, "/" + body, body + "/", "/" + body + "/"])))
def test_the_quick_path_check_says_what_looking_at_every_part_says(path: str) -> None:
    assert _relative(path) == _relative_by_parts(path)
