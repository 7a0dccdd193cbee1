"""What the build tests share: ``seriesfeed`` run in a process of its own (nothing kept in
memory between two calls), a built folder's files, and the store's entries read afresh."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seriesfeed import actions
from seriesfeed.config import load_config
from seriesfeed.models import Entry
from seriesfeed.store import open_store


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=300, check=False)


def cli(config: Path, *args: str) -> str:
    """``seriesfeed`` in a process of its own; its output, after asserting it succeeded."""
    proc = run(config, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the build's own records, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".seriesfeed-")}


def entries(config_path: Path) -> list[Entry]:
    config = load_config(config_path, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        return actions.list_entries(store)
    finally:
        store.close()


class Tmpfs:
    """A small tmpfs mounted at ``folder`` (root only), unmounted on leaving, whatever
    the test did: ``with Tmpfs(folder, "size=64m") as disk: ... disk.remount("size=1g")``."""

    def __init__(self, folder: Path, options: str) -> None:
        self.folder, self.options = folder, options

    def __enter__(self) -> Tmpfs:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", self.options, "tmpfs",
                        str(self.folder)], check=True)
        return self

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.folder)], check=True)

    def __exit__(self, *_: object) -> None:
        subprocess.run(["umount", str(self.folder)], check=False)
