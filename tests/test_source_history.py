"""A source's poll history: one row per poll that asked the source, written with the
poll's state, bounded per source, listed by `sources history`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from seriesfeed.actions import sources
from seriesfeed.config import Config
from seriesfeed.store import Store
from seriesfeed.store import sources as sq
from tests.conftest import CliResult
from tests.harness.http_source import Route, SourceServer
from tests.test_sources import SLUG, poll, published, server, site  # noqa: F401 - fixtures


def test_every_poll_that_asked_leaves_one_row_newest_first(
        server: SourceServer, site: Callable[..., tuple[Config, Store]],  # noqa: F811
        published: dict[str, bytes], run_cli: Callable[..., CliResult]) -> None:  # noqa: F811
    server.routes["/en.xml"] = Route(published[f"/feeds/en/{SLUG}/atom.xml"])
    config, store = site(en={"path": "/en.xml", "series": SLUG})
    assert poll(store, config, "en").outcome == "imported"
    assert poll(store, config, "en").outcome == "not-modified"
    server.routes["/en.xml"] = Route(status=500, conditional=False)
    assert poll(store, config, "en").outcome == "failed"
    assert poll(store, config, "en").outcome == "waiting"  # backing off: asked nothing
    server.routes["/en.xml"] = Route(status=410, conditional=False)
    assert poll(store, config, "en", force=True).outcome == "gone"
    assert poll(store, config, "en", force=True).outcome == "gone"  # stopped: not asked

    found = sources.source_history(store, config, "en")
    assert found["total"] == 4
    got = [(p["result"], p["status"], p["added"], p["updated"]) for p in found["polls"]]
    assert got == [("gone", "410", 0, 0), ("error", "500", 0, 0),
                   ("unchanged", "304", 0, 0), ("ok", "200", 18, 0)]
    assert "410" in found["polls"][0]["error"] and found["polls"][3]["error"] is None
    assert found["polls"][0]["at"].endswith(("-05:00", "-04:00"))  # the site's zone

    assert config.path is not None
    as_json = run_cli("--config", config.path, "sources", "history", "en", "--limit", "2",
                      "--json")
    assert as_json.code == 0, as_json
    data = json.loads(as_json.out)
    assert [p["result"] for p in data["polls"]] == ["gone", "error"] and data["total"] == 4
    text = run_cli("--config", config.path, "sources", "history", "en")
    assert text.code == 0 and text.out.splitlines()[-1] == "4 of 4 polls"
    assert "ok        200    added 18 updated 0" in text.out
    unknown = run_cli("--config", config.path, "sources", "history", "nope")
    assert unknown.code == 1 and unknown.err.startswith("Error: no source 'nope'"), unknown
    zero = run_cli("--config", config.path, "sources", "history", "en", "--limit", "0")
    assert zero.code == 2


def test_history_keeps_the_newest_rows_of_each_source_only(store: Store) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with store.write() as conn:
        sq.record_poll(conn, "other", at=start, result="ok", status="200")
    for i in range(25):
        with store.write() as conn:
            sq.record_poll(conn, "en", at=start + timedelta(minutes=i), result="ok",
                           status="200", added=i, keep=10)
    with store.read() as conn:
        rows, total = sq.poll_history(conn, "en", limit=100)
        others, other_total = sq.poll_history(conn, "other", limit=100)
    assert total == 10 and [r.added for r in rows] == list(range(24, 14, -1))
    assert other_total == 1 and others[0].result == "ok"  # another source's rows stay
    assert sq.KEEP_POLLS == 1000
