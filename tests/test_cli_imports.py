"""A command imports what it needs when it needs it: `seriesfeed status` (a cron job's or a
monitor's every minute) loads neither the web stack, the SMTP client nor the feed writer,
and `--help` not even the store. Each is a fresh interpreter: sys.modules is read after the
command ran, in the same process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ConfigFactory

PROBE = """
import json, sys
from seriesfeed.cli import main
code = main(sys.argv[1:])
heavy = ("starlette", "uvicorn", "aiosmtplib", "feedgen", "sqlalchemy", "jinja2")
print(json.dumps({"code": code,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}))
"""


def _loaded(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=120, check=False)
    last = proc.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    return result["code"], {m.split(".")[0] for m in result["loaded"]}


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
    code, loaded = _loaded("--help")
    assert code == 0
    assert not loaded, loaded
