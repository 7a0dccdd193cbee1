"""Attacks on the session's changes from outside their own tests (batched publish, lazy
command modules, the SQLite date fast path, the whole-site read), on real files and
processes: each test here failed on the code it was written against."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from seriesfeed.feeds import FeedDocument
from seriesfeed.publish import publish

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
