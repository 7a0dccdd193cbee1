"""The quick start (`./dev run`: the series page, then the seed JSON, then `feeds build`)
run twice changes nothing: a date-only re-import keeps a stored time on the same day."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.conftest import EXAMPLE_JSON, SEED_PAGE, CliResult, ConfigFactory


def _files(folder: Path) -> dict[str, tuple[int, bytes]]:
    """The published files; the build's own stamp and manifest left out: the test's
    ``utime`` of every file is a hand edit the manifest must notice (its records hold
    the change time), so they are rewritten while no published file is."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".seriesfeed-")}


def test_the_quick_start_twice_changes_no_entry_and_rewrites_no_file(
        make_config: ConfigFactory, tmp_path: Path,
        run_cli: Callable[..., CliResult]) -> None:
    config = str(make_config(database={"url": f"sqlite:///{tmp_path / 'q.sqlite3'}"}))
    out = tmp_path / "public"

    def quick_start() -> str:
        for args in (("import", str(SEED_PAGE), "--series-title",
                      "es=Reflexiones sobre la crisis de la ISO"),
                     ("import", str(EXAMPLE_JSON))):
            result = run_cli("--config", config, *args)
            assert result.code == 0, result
        listed = run_cli("--config", config, "entries", "list", "--json")
        assert run_cli("--config", config, "feeds", "build", "--out", str(out)).code == 0
        return listed.out

    first = quick_start()
    files = _files(out)
    for path in out.rglob("*"):  # an old mtime: a rewrite shows even within one tick
        if path.is_file():
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    files = {k: (1_000_000_000, v[1]) for k, v in files.items()}
    second = quick_start()
    assert second == first
    rewritten = [k for k, v in _files(out).items() if v != files.get(k)]
    assert rewritten == []
