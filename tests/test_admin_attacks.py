"""The console attacked from outside, as a hostile client and a careless operator would:
each test here is a break found that way (it failed before its fix) and now holds. The app
runs on a real uvicorn server over a real SQLite store (tests/harness/web.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed import actions
from seriesfeed.actions import audit
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE, CliResult
from tests.harness.web import live
from tests.test_admin import Console, console_config

HUGE = "9" * 23  # past 64 bits: no row has such an id, SQLite cannot even bind it


@pytest.fixture
def console(make_config: Callable[..., Path], tmp_path: Path) -> Iterator[Console]:
    config = console_config(make_config, tmp_path)
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    try:
        with live(create_app(config, store)) as server:
            yield Console(config, store, server)
    finally:
        store.close()


@pytest.mark.parametrize("path", [f"/admin/digests/{HUGE}", "/admin/subscribers?page=%C2%B2",
                                  "/admin/outbox?page=%C2%B2", f"/admin/audit?page={HUGE}"])
def test_ids_past_64_bits_and_unicode_digits_are_not_found_not_500(console: Console,
                                                                   path: str) -> None:
    reply = console.get(path, console.session())
    assert reply.status in (200, 404), (path, reply.status, reply.body[:200])
    assert reply.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("path", "form"), [
    ("/admin/outbox/retry", {"id": HUGE}), ("/admin/outbox/retry", {"id": "²"}),
    (f"/admin/digests/{HUGE}/retry", {}),
    ("/admin/entries/edit", {"entry": HUGE, "part": "1"}),
    ("/admin/entries/edit", {"entry": "1", "part": "²"}),
])
def test_actions_with_ids_past_64_bits_are_refused_and_audited(console: Console, path: str,
                                                                form: dict[str, str]) -> None:
    cookies = console.session()
    before = audit.count(console.store)
    reply = console.post(path, cookies, form)
    assert reply.status in (303, 404), (path, form, reply.status, reply.body[:200])
    assert reply.headers["cache-control"] == "no-store"
    if reply.status == 303:  # the action ran and was refused: one row saying so
        rows = audit.log(console.store, limit=1)
        assert audit.count(console.store) == before + 1 and rows[0].ok is False


@pytest.mark.parametrize("command", [["digests", "show", HUGE], ["digests", "retry", HUGE],
                                     ["outbox", "retry", HUGE], ["entries", "show", HUGE],
                                     ["entries", "show", "²"]])
def test_the_cli_says_not_found_for_ids_past_64_bits(run_cli: Callable[..., CliResult],
                                                     make_config: Callable[..., Path],
                                                     command: list[str]) -> None:
    path = make_config()
    assert run_cli("--config", path, "init").code == 0
    result = run_cli("--config", path, *command)
    assert result.code == 1 and result.err.startswith("Error: "), result
    assert "Traceback" not in result.err
