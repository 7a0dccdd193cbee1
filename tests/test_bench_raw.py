"""The feeds benchmark's raw baseline writes what `seriesfeed feeds build` writes, byte for
byte: a baseline doing less would make the benchmark's ratio measure nothing. A template,
catalogue or feed change that bench/raw_feeds.py does not follow fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_raw_script_writes_the_same_bytes_as_feeds_build() -> None:
    """bench/feeds.py --check: a 300-entry store, one build by each (separate processes),
    every file compared (about 20 s)."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "feeds.py"), "--check"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "byte-identical: 360 files" in proc.stdout, proc.stdout


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import feeds  # bench/feeds.py, beside its procstat module

    return feeds


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, body in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)
    return root


def test_the_comparison_names_each_kind_of_difference(bench: ModuleType,
                                                      tmp_path: Path) -> None:
    same = {"feeds/en/atom.xml": b"<feed>\n<id>1</id>\n</feed>\n", "robots.txt": b"x\n"}
    ours = _folder(tmp_path / "ours", {**same, "en/index.html": b"<p>Next</p>\n",
                                       ".seriesfeed-manifest.json": b"{}"})
    raw = _folder(tmp_path / "raw", {**same, "en/index.html": b"<p>Siguiente</p>\n",
                                     "sitemap.xml": b"<urlset/>\n",
                                     "feeds/.atom.xml.12.tmp": b""})
    problems = bench.compare(ours, raw)
    assert problems[0] == "only in the raw script: sitemap.xml"
    assert problems[1] == "differs: en/index.html (from line 1; 12 against 17 bytes)"
    assert "    -<p>Next</p>" in problems and "    +<p>Siguiente</p>" in problems
    # dot-files (ours' manifest and stamp, temporary files) are not outputs
    assert not any(".seriesfeed" in p or ".tmp" in p for p in problems)


def test_identical_folders_print_their_count_and_no_difference(
        bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"a/index.html": b"<p>\xc3\xa9</p>\n", "robots.txt": b"x\n"}
    ours = _folder(tmp_path / "ours", {**files, ".seriesfeed-build": b"1"})
    raw = _folder(tmp_path / "raw", files)
    assert bench.compare(ours, raw) == []
    assert bench.report_comparison(ours, raw) is True
    assert capsys.readouterr().out == "byte-identical: 2 files\n"
    (raw / "robots.txt").write_bytes(b"y\n")
    assert bench.report_comparison(ours, raw) is False
    assert "NOT byte-identical" in capsys.readouterr().out
