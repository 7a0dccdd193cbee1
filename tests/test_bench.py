"""The benchmarks run (at a small size): they print their figures. Not a timed test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_feeds_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "feeds.py"), "--quick"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for figure in ("full build, cold", "raw feedgen script, the same file set",
                   "ratio full/raw by CPU per build", "rebuild with nothing changed",
                   "after one `entries add`", "after one title edit", "seriesfeed --help",
                   "seriesfeed status", "load "):
        assert figure in proc.stdout
    # the raw script writes the same file set: the same count of documents
    files = next(line for line in proc.stdout.splitlines() if line.startswith("files:"))
    assert "NOT the same count" not in files, files
    assert "nothing changed since the last build" in proc.stdout


def test_http_benchmark_runs_wrk_against_both_servers() -> None:
    """wrk outside both servers' processes; each answered its own ETag with 304 only (the
    bench stops otherwise), and the figures name wrk's own share of a core."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "http_304.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode and "this bench needs wrk" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for figure in ("seriesfeed serve, conditional GET (304)", "bare Starlette",
                   "ms per 304", "wrk at most", "ratio seriesfeed/bare"):
        assert figure in proc.stdout


def test_digest_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "digest_send.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for figure in ("raw aiosmtplib", "full path", "ratio full/raw by sender CPU",
                   "peak memory"):
        assert figure in proc.stdout
    assert "1000 sent, 0 to retry, 0 failed" in proc.stdout


def test_sources_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "sources.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for figure in ("first poll (import)", "conditional poll (304, no parse)",
                   "unconditional poll", "ratio unconditional/304", "one entry edited"):
        assert figure in proc.stdout
    assert "200 added" in proc.stdout and "1 updated, 199 unchanged" in proc.stdout


def test_metrics_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "metrics_scrape.py"),
                           "--quick"], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/metrics on 2000 subscribers" in proc.stdout and "/healthz on" in proc.stdout


def test_the_digest_path_calls_down_only() -> None:
    """bench/call_path.py on one real `digest send`: the messages went out, and no two of
    our modules call each other both ways (a verb calls the store and the renderers; they
    never call back)."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "call_path.py")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "3 sent, 0 to retry, 0 failed" in proc.stdout
    assert "modules touched by `digest send`: " in proc.stdout
    assert "pairs that call each other both ways: 0" in proc.stdout, proc.stdout
    assert "seriesfeed.actions.digests -> seriesfeed.store.digests" in proc.stdout


def test_cli_start_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cli_start.py"), "--repeat", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for figure in ("import seriesfeed.cli", "entries list", "status", "load average"):
        assert figure in proc.stdout


def test_bounces_benchmark_runs_and_prints_its_figures() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bounces.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for figure in ("messages/s", "CPU s per 1,000 messages"):
        assert figure in proc.stdout
    # every ordinary message passed over unparsed, every report read, none left behind
    assert "1000 not bounce or complaint reports, 0 unreadable" in proc.stdout, proc.stdout
    assert "20 not matched to a message we sent" in proc.stdout
    assert "left in new/: 0" in proc.stdout
