"""Every command answers bad input with one ``Error:`` line and a non-zero exit, never a
Python traceback (README "Commands"): an --out into a folder that does not exist, a port
out of range, a daemon interval too large for a timer (found by attacking the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

Run = Callable[..., CliResult]


@pytest.mark.parametrize("args", [
    ("entries", "export", "--out", "{missing}/entries.json"),
    ("subscribers", "export", "--out", "{missing}/subscribers.csv"),
    ("entries", "export", "--format", "csv", "--out", "{missing}/entries.csv"),
])
def test_bad_arguments_are_one_error_line(run_cli: Run, make_config: Callable[..., Path],
                                          tmp_path: Path, args: tuple[str, ...]) -> None:
    site = make_config(database={"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"})
    argv = [a.format(missing=tmp_path / "no-such-folder") for a in args]
    # an export never creates the store: the bad --out is what this checks
    assert run_cli("--config", site, "init").code == 0
    try:
        result = run_cli("--config", site, *argv)
    except Exception as exc:
        pytest.fail(f"{' '.join(argv)} raised {type(exc).__name__}: {exc}")
    assert result.code != 0
    assert result.err.startswith("Error:") and "Traceback" not in result.err, result
    assert "no-such-folder" in result.err and result.err.count("\n") == 1, result
    assert not list(tmp_path.glob("**/*.tmp"))  # nothing half-written


def test_a_port_out_of_range_is_a_usage_error(run_cli: Run, make_config: Callable[..., Path],
                                              tmp_path: Path) -> None:
    site = make_config(database={"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"})
    result = run_cli("--config", site, "serve", "--port", "99999")
    assert result.code == 2 and "Traceback" not in result.err, result
    assert "Error: Invalid value for '--port'" in result.err, result


def test_a_drain_interval_too_large_for_a_timer_is_a_config_error(
        run_cli: Run, make_config: Callable[..., Path], tmp_path: Path) -> None:
    site = make_config(database={"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"},
                       extra="")
    text = site.read_text(encoding="utf-8").replace("drain_seconds = 15",
                                                     "drain_seconds = inf")
    site.write_text(text, encoding="utf-8")
    result = run_cli("--config", site, "status")
    # was accepted; `seriesfeed run` then died in APScheduler with an OverflowError
    assert result.code == 2 and "schedule.drain_seconds" in result.err, result
    for key, value in (("watch_seconds = 5", "watch_seconds = 1e300"),
                       ("retry_seconds = 60", "retry_seconds = nan")):
        site.write_text(site.read_text(encoding="utf-8").replace(
            "drain_seconds = inf", "drain_seconds = 15").replace(key, value), encoding="utf-8")
        result = run_cli("--config", site, "status")
        name = key.split(" ")[0]
        assert result.code == 2 and name in result.err and "Traceback" not in result.err, \
            result
        site.write_text(site.read_text(encoding="utf-8").replace(value, key), encoding="utf-8")
