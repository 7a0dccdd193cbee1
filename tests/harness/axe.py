"""axe-core, the accessibility engine, pinned and fetched from the npm registry, run in chromium.

The package is installed once per machine into a cache folder (``npm install`` of one pinned
version, its integrity checked by npm against the registry's lock entry) and its
``axe.min.js`` injected into each page Playwright opens. Without npm or the registry, the
tests that use it skip and say why.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"
# every WCAG 2.x A/AA rule set axe has, and its best practices
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def _cache() -> Path:
    return Path(os.environ.get("SERIESFEED_NPM_CACHE") or ROOT / ".cache" / "npm")


def axe_source() -> str:
    """The text of axe.min.js at AXE_VERSION, or a skip that says why it cannot be had."""
    base = _cache()
    script = base / "node_modules" / "axe-core" / "axe.min.js"
    manifest = base / "node_modules" / "axe-core" / "package.json"

    def ready() -> bool:
        return (script.exists() and manifest.exists()
                and json.loads(manifest.read_text())["version"] == AXE_VERSION)

    if not ready():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (apt-get install npm): axe-core cannot be had")
        base.mkdir(parents=True, exist_ok=True)
        with (base / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready():
                run = subprocess.run(
                    [npm, "install", "--prefix", str(base), "--no-audit", "--no-fund",
                     "--save-exact", f"axe-core@{AXE_VERSION}"],
                    capture_output=True, text=True, timeout=300, check=False)
                if run.returncode != 0 or not ready():
                    tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
                    pytest.skip(f"npm install axe-core@{AXE_VERSION} failed: {tail}")
    return script.read_text(encoding="utf-8")


def audit(page: Any, source: str) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now (every impact, the TAGS rule sets)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    result: dict[str, Any] = page.evaluate(
        """async (tags) => await axe.run(document, {
               runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})""",
        TAGS)
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    """One line a violation, with the first offending nodes: what a failing test prints."""
    lines = []
    for v in violations:
        targets = "; ".join(" ".join(n["target"]) + " " + n.get("failureSummary", "")
                            .replace("\n", " ")[:160] for n in v["nodes"][:3])
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {targets}")
    return "\n".join(lines)
