"""Figures and tiers. Each catalogue test is marked ``@pytest.mark.catalogue("F1")`` and
records its figures with the ``figures`` fixture. ``--full`` runs the full tier (full sizes
and the tests marked ``full``); ``--report PATH`` writes the figures of the run as Markdown
(``./dev test --full`` writes docs/reliability.md)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

FIGURES: dict[str, list[tuple[str, dict[str, object]]]] = {}
OUTCOMES: dict[str, str] = {}
FULL = False

TITLES = {
    "L1": "20,000 then 100,000 recipients through a pool of 8",
    "L2": "60 s of mixed load on SQLite and PostgreSQL",
    "L3": "conditional GETs while entries change",
    "L4": "import 20,000 entries per format, re-import",
    "L5": "50,000 subscribers with duplicates and every status",
    "F1": "SIGKILL at random during sends",
    "F2": "named crash points at first, middle and last hit",
    "F3": "PostgreSQL: kills, two senders, terminated backend",
    "F4": "SMTP server down mid-send",
    "F5": "SMTP reply matrix",
    "F6": "drops after the dot and mid-DATA",
    "F7": "hung or slow server",
    "F8": "one daemon per store",
    "F9": "daemon down across due digests",
    "F10": "DST and clock steps",
    "F11": "SIGTERM during a send",
    "F12": "disk full, read-only database, a writer holding the lock",
    "F13": "one-click unsubscribes during a send",
    "F14": "one internationalised address among 400; any exception stays its row's",
    "F15": "a misconfigured relay over three digests, then fixed",
    "F16": "a relay slower than the lease",
    "F17": "SIGTERM with a tarpit relay",
    "F18": "a writer holding the lock while the web is busy (event loop, 503)",
    "F19": "a damaged or newer store: one Error line, check, /healthz",
    "F20": "several nodes on one PostgreSQL: the leader killed or frozen past its lease",
    "B1": "importer fuzzing",
    "B2": "XML hazard corpus",
    "B3": "control characters through feeds",
    "B4": "CSV/JSON edges and formula cells",
    "B5": "hostile content through strict servers",
    "B6": "fast byte path against EmailMessage",
    "B7": "entry URLs and ids checked on every import path",
    "S1": "header injection through names",
    "S2": "no enumeration",
    "S3": "CSRF",
    "S4": "token mutations",
    "S5": "RFC 8058 one-click with DKIM",
    "S6": "link scanners",
    "S7": "list-bombing",
    "S8": "Host poisoning and open redirects",
    "S9": "oversized and slow requests, headers",
    "S10": "XSS payloads in entries",
    "S11": "only POST acts on token links (HEAD, PUT, DELETE, PATCH, OPTIONS)",
    "S12": "a foreign Origin is refused even when Sec-Fetch-Site says same-site",
    "S13": "erasure: no copy of a removed address anywhere in the store",
    "S14": "slow headers and slow bodies: header and body deadlines",
}


def tier(fast: int, full: int) -> int:
    """A size: ``fast`` in the README's test command, ``full`` under ``--full``."""
    return full if FULL else fast


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full", action="store_true",
                     help="run the full reliability tier (full sizes, tests marked full)")
    parser.addoption("--report", default=None,
                     help="write the catalogue figures of this run to this Markdown file")


def pytest_configure(config: pytest.Config) -> None:
    global FULL
    FULL = bool(config.getoption("--full"))
    # property tests: the fast tier (every landing's check) draws the same examples each
    # run, so a landing is never decided by a lucky or unlucky draw; the full tier draws
    # new ones each run and is where hypothesis explores (its finds become @example lines)
    settings.register_profile("fast", derandomize=True, database=None)
    settings.register_profile("full", derandomize=False)
    settings.load_profile("full" if FULL else "fast")
    config.addinivalue_line("markers", "catalogue(id): a RELIABILITY.md catalogue test")
    config.addinivalue_line("markers", "full: runs only in the full tier (--full)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if FULL:
        return
    skip = pytest.mark.skip(reason="full tier only: run ./dev test --full")
    for item in items:
        if item.get_closest_marker("full"):
            item.add_marker(skip)


def _catalogue_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("catalogue")
    return str(marker.args[0]) if marker else None


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    cid = _catalogue_id(request.node) or "-"

    def record(**values: object) -> None:
        FIGURES.setdefault(cid, []).append((request.node.name, values))
        print(f"[{cid}] {request.node.name}: " +
              ", ".join(f"{k} {v}" for k, v in values.items()))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        OUTCOMES[report.nodeid] = report.outcome


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


START = time.monotonic()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--report")
    if not path:
        return
    items = [i for i in session.items if _catalogue_id(i)]
    by_id: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_id.setdefault(_catalogue_id(item) or "-", []).append(item)
    order = sorted(by_id, key=lambda c: ("LFBS".index(c[0]), int(c[1:])))
    lines = [
        "# Reliability report",
        "",
        "Written by `./dev test --full` (tests/harness/figures.py); do not edit by hand.",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- commit: {_commit()}",
        f"- machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}",
        f"- tier: {'full' if FULL else 'fast'}; session exit status {exitstatus}; "
        f"{time.monotonic() - START:.0f} s",
        "",
        "| test | what | outcome | figures |",
        "|---|---|---|---|",
    ]
    for cid in order:
        outcomes = [OUTCOMES.get(i.nodeid, "not run") for i in by_id[cid]]
        summary = ", ".join(f"{n} {o}" for o, n in sorted(
            {o: outcomes.count(o) for o in outcomes}.items()))
        figs = "<br>".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in values.items())
            for name, values in FIGURES.get(cid, []))
        lines.append(f"| {cid} | {TITLES.get(cid, '')} | {summary} | {figs or '—'} |")
    missing = [c for c in TITLES if c not in by_id]
    if missing:
        lines += ["", "Not in this suite: " + ", ".join(missing) + " (see the issue note)."]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
