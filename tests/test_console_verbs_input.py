"""The console's verbs given what a hostile or careless operator types: numbers no store
column holds, digits of other scripts, an unknown language, bytes that are not UTF-8.
Each is one ``Error:`` line and a non-zero exit, on SQLite and PostgreSQL, and changes
nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from seriesfeed.actions.subscribers import add_subscriber, remove_subscriber
from seriesfeed.config import Config
from seriesfeed.store import Store, open_store
from tests.conftest import CliResult

Run = Callable[..., CliResult]
HUGE = "99999999999999999999999"  # past a 64-bit integer: no id column holds it


@pytest.fixture
def world(config: Config) -> Iterator[tuple[Config, Store]]:
    store = open_store(config.database.url, config.base_dir)
    add_subscriber(store, config, "ann@example.org", confirmed=True)
    add_subscriber(store, config, "bob@example.org", confirmed=True)
    yield config, store
    store.close()


def _one_error(result: CliResult, *names: str) -> None:
    lines = result.err.strip().splitlines()
    assert result.code in (1, 2) and len(lines) >= 1, result.err
    error = [line for line in lines if line.startswith("Error: ")]
    assert len(error) == 1 and "Traceback" not in result.err, result.err
    assert any(error[0].startswith(f"Error: {name}: ") for name in names), result.err


@pytest.mark.parametrize("who", [HUGE, "²", "#" + HUGE])
def test_a_subscriber_id_no_store_holds_is_one_error_line(
        world: tuple[Config, Store], config_path: Path, run_cli: Run, who: str) -> None:
    before = run_cli("--config", config_path, "subscribers", "list", "--json").out
    _one_error(run_cli("--config", config_path, "subscribers", "show", who), "WHO")
    _one_error(run_cli("--config", config_path, "subscribers", "set", who, "--status",
                       "unsubscribed"), "WHO")
    assert run_cli("--config", config_path, "subscribers", "list", "--json").out == before


def test_an_id_in_another_scripts_digits_is_not_taken_for_a_subscriber(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    # "١" is ARABIC-INDIC DIGIT ONE: int() reads it as 1, so subscriber 1 was unsubscribed
    result = run_cli("--config", config_path, "subscribers", "set", "١", "--status",
                     "unsubscribed")
    _one_error(result, "WHO")
    shown = run_cli("--config", config_path, "subscribers", "show", "1")
    assert shown.code == 0 and "confirmed" in shown.out, shown


@pytest.mark.parametrize("args", [
    ("subscribers", "list", "--offset", HUGE),
    ("admin", "log", "--limit", HUGE),
    ("admin", "log", "--offset", HUGE),
    ("digests", "retry", HUGE),
    ("sources", "history", "blog", "--limit", HUGE),
    ("outbox", "list", "--digest", HUGE),
])
def test_a_page_or_digest_number_no_store_holds_is_one_error_line(
        world: tuple[Config, Store], config_path: Path, run_cli: Run,
        args: tuple[str, ...]) -> None:
    _one_error(run_cli("--config", config_path, *args), "offset", "--offset", "--limit",
               "DIGEST_ID", "--digest")


@pytest.mark.parametrize("ref", [HUGE, "²", "١"])
def test_an_entry_number_no_store_holds_is_no_entry(
        world: tuple[Config, Store], config_path: Path, run_cli: Run, ref: str) -> None:
    for args in (("entries", "show", ref), ("entries", "set", ref, "--part", "2"),
                 ("entries", "remove", ref)):
        result = run_cli("--config", config_path, *args)
        assert result.code == 1 and "Traceback" not in result.err, (args, result.err)
        assert result.err.strip() == f"Error: no entry with id, URL or number '{ref}'", \
            (args, result.err)


def test_an_unknown_language_filter_is_an_error_not_an_empty_list(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    _one_error(run_cli("--config", config_path, "subscribers", "list", "--lang", "xx"),
               "language")
    assert run_cli("--config", config_path, "subscribers", "list", "--lang", "en",
                   "--json").code == 0


def test_bytes_that_are_not_utf8_in_a_search_or_a_reason_never_reach_the_store(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    _config, store = world
    remove_subscriber(store, "bob@example.org")
    # a terminal in Latin-1: Python hands the argument over with a lone surrogate
    search = run_cli("--config", config_path, "subscribers", "list", "--search", "ann\udcff")
    assert search.code == 0 and "Traceback" not in search.err, search.err
    lifted = run_cli("--config", config_path, "subscribers", "unsuppress", "bob@example.org",
                     "--reason", "asked by phone \udcff")
    assert lifted.code == 0, lifted.err
    logged = run_cli("--config", config_path, "admin", "log", "--json")
    assert "asked by phone" in logged.out and "\\udcff" not in logged.out
    # nothing but the unlawful character is lost: a reason made only of it is no reason
    remove_subscriber(store, "ann@example.org")
    blank = run_cli("--config", config_path, "subscribers", "unsuppress", "ann@example.org",
                    "--reason", "\udcff\udcfe")
    _one_error(blank, "--reason")


def test_a_search_longer_than_any_address_is_the_same_error_on_every_store(
        world: tuple[Config, Store], config_path: Path, run_cli: Run) -> None:
    # SQLite refuses a LIKE pattern over 50,000 bytes ("pattern too complex", blamed on
    # the database) where PostgreSQL answers: the two stores must answer alike
    for search in ("a" * 60_000, "%" * 30_000):
        _one_error(run_cli("--config", config_path, "subscribers", "list", "--search",
                           search), "search")
    longest = run_cli("--config", config_path, "subscribers", "list", "--search", "a" * 254,
                      "--json")
    assert longest.code == 0 and longest.out.strip() == "[]", longest.err
