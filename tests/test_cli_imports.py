"""A command imports what it needs when it needs it: `seriesfeed status` (a cron job's or a
monitor's every minute) loads neither the web stack, the SMTP client nor the feed writer,
`feeds build` (a cron job's, or the editor's after each change) and `entries add` neither
those nor another command's module or verbs, and `--help` not even the config. Each is a
fresh interpreter: sys.modules is read after the command ran, in the same process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ConfigFactory

PROBE = """
import json, sys
from seriesfeed.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(sys.modules)}))
"""
HEAVY = {"starlette", "uvicorn", "aiosmtplib", "feedgen", "sqlalchemy", "jinja2"}
# what a one-shot command other than `run`, `serve`, `digest send` and `sources poll` never
# needs: the daemon and its scheduler, the web app, the SMTP client, HTTP fetching
NEVER_ONE_SHOT = {"seriesfeed.daemon", "seriesfeed.scheduler", "seriesfeed.web",
                  "seriesfeed.logs", "seriesfeed.mailer", "seriesfeed.fetch",
                  "seriesfeed.actions.delivery", "seriesfeed.actions.bounces",
                  "apscheduler.schedulers", "starlette", "uvicorn", "aiosmtplib",
                  "httpx", "httpx2",
                  # on SQLite (these tests' store) nothing runs PostgreSQL's dialect
                  "sqlalchemy.dialects.postgresql"}


def _modules(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.stdout.strip(), proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], set(result["loaded"])


def _loaded(*argv: str) -> tuple[int, set[str]]:
    code, modules = _modules(*argv)
    return code, {m.split(".")[0] for m in modules} & HEAVY


def _among(modules: set[str], names: set[str]) -> set[str]:
    """The modules that are one of ``names`` or inside one of them."""
    return {m for m in modules if any(m == n or m.startswith(n + ".") for n in names)}


def _cli_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("seriesfeed.cli.")}


@pytest.fixture
def store_config(make_config: ConfigFactory, tmp_path: Path) -> str:
    config = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"})
    init = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config), "init"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    return str(config)


def test_status_does_not_import_the_web_the_smtp_client_or_feedgen(
        make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config(database={"url": f"sqlite:///{tmp_path}/store.sqlite3"})
    init = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config), "init"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    code, loaded = _loaded("--config", str(config), "status")
    assert code == 0
    assert "sqlalchemy" in loaded  # it did read the store: the probe sees real imports
    assert not loaded & {"starlette", "uvicorn", "aiosmtplib", "feedgen"}, loaded


def test_help_imports_no_library_a_command_would_use() -> None:
    code, modules = _modules("--help")
    assert code == 0
    assert "seriesfeed.cli.subscribers" in modules  # it listed every command: all loaded
    assert not {m.split(".")[0] for m in modules} & HEAVY
    # the listing reads no config and starts no event loop
    assert not _among(modules, {"seriesfeed.config", "babel", "asyncio", "tomllib"})


def test_feeds_build_imports_its_own_command_and_verbs_only(
        store_config: str, tmp_path: Path) -> None:
    argv = ("--config", store_config, "entries", "add", "--series", "s", "--series-title",
            "S", "--title", "T", "--published", "2024-01-01")
    added = subprocess.run([sys.executable, "-m", "seriesfeed", *argv], capture_output=True,
                           text=True, timeout=120, check=False)
    assert added.returncode == 0, added.stderr
    code, modules = _modules("--config", store_config, "feeds", "build", "--out",
                             str(tmp_path / "out"))
    assert code == 0
    assert (tmp_path / "out" / "feeds").is_dir()
    assert {"feedgen", "jinja2", "seriesfeed.pages"} <= modules  # it built: real imports
    assert _cli_modules(modules) == {"seriesfeed.cli.feeds"}
    assert not _among(modules, NEVER_ONE_SHOT)
    # neither the entry verbs (the importers, the CSV writer) nor the operator verbs (the
    # outbox's and the subscribers' SQL): a build releases scheduled entries and reads
    assert not _among(modules, {"seriesfeed.actions.entries", "seriesfeed.importers",
                                "seriesfeed.actions.ops", "seriesfeed.store.outbox",
                                "seriesfeed.store.subscribers", "seriesfeed.store.backup"})


def test_entries_add_imports_its_own_command_and_verbs_only(store_config: str) -> None:
    code, modules = _modules("--config", store_config, "entries", "add", "--series", "s",
                             "--series-title", "S", "--title", "T", "--published",
                             "2024-01-01")
    assert code == 0
    assert "seriesfeed.actions.entries" in modules
    assert _cli_modules(modules) == {"seriesfeed.cli.entries"}
    assert not _among(modules, NEVER_ONE_SHOT)
    assert not _among(modules, {"feedgen", "jinja2", "seriesfeed.importers.csvfmt",
                                "seriesfeed.importers.parse", "seriesfeed.actions.ops",
                                "seriesfeed.store.outbox"})


def test_status_imports_its_own_command_only(store_config: str) -> None:
    code, modules = _modules("--config", store_config, "status")
    assert code == 0
    assert "apscheduler.triggers.cron" in modules  # it read the jobs' next runs
    assert _cli_modules(modules) == {"seriesfeed.cli.daemon"}
    assert not _among(modules, NEVER_ONE_SHOT)
    assert not _among(modules, {"seriesfeed.actions.entries", "seriesfeed.importers"})
