"""Corpora written by other people: pinned source distributions from the package registry.

Each corpus is a package's sdist, fetched with ``pip download --no-deps --no-binary :all:``
into a cache folder, checked against its sha256 and unpacked once. Nothing of it is copied into
this repository. Without the registry the tests that use a corpus skip, and say why.

The cache is ``$SERIESFEED_CORPUS_CACHE`` or ``.cache/corpora`` under the project (ignored by
git), so a second run, and every xdist worker after the first, reads the unpacked tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Corpus:
    """One pinned sdist: what to ask pip for, the file it gives, and that file's sha256."""

    requirement: str
    filename: str
    sha256: str


CORPORA: dict[str, Corpus] = {
    # tests/wellformed, illformed, encoding, entities: 2,277 real-world and edge-case feeds
    "feedparser": Corpus(
        "feedparser==6.0.12",
        "feedparser-6.0.12.tar.gz",
        "64f76ce90ae3e8ef5d1ede0f8d3b50ce26bcce71dd8ae5e82b1cd2d4a5f94228",
    ),
    # tests/data: 118 real bounce messages, with the addresses each should yield in tests/
    "flufl.bounce": Corpus(
        "flufl.bounce==6.0.0",
        "flufl_bounce-6.0.0.tar.gz",
        "a1df16b9d1877ae4536f7d76c00d8421fcefbe694f80f5285d05c45a2547b1bc",
    ),
    # tests/test_syntax.py: valid and invalid addresses, with what each normalises to
    "email-validator": Corpus(
        "email-validator==2.4.0",
        "email_validator-2.4.0.tar.gz",
        "be487bc50bc3bd832a98515a55a15649d9bec06d954fa178663190714b6c4ee1",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("SERIESFEED_CORPUS_CACHE") or ROOT / ".cache" / "corpora")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(corpus: Corpus, into: Path) -> Path | str:
    """The verified archive, or the reason it could not be had."""
    archive = into / corpus.filename
    if not archive.exists():
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--no-binary", ":all:", "--disable-pip-version-check", "-d", str(into),
                 corpus.requirement],
                capture_output=True, text=True, timeout=180, check=False,
            )
        except subprocess.TimeoutExpired:
            return f"pip download {corpus.requirement} took over 180 s"
        if run.returncode != 0 or not archive.exists():
            tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
            return f"pip download {corpus.requirement} failed: {tail}"
    got = _sha256(archive)
    if got != corpus.sha256:
        archive.unlink()
        return f"{corpus.filename} has sha256 {got}, not the pinned {corpus.sha256}"
    return archive


def corpus_root(name: str) -> Path:
    """The unpacked sdist of corpus NAME (its top folder), or a skip that says why not."""
    corpus = CORPORA[name]
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    top = base / corpus.filename.removesuffix(".tar.gz")
    done = top / ".seriesfeed-unpacked"
    if done.exists():
        return top
    # several xdist workers may ask at once: one downloads and unpacks, the others wait
    with (base / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return top
        archive = _download(corpus, base)
        if isinstance(archive, str):
            pytest.skip(f"corpus {name} is not available: {archive}")
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
        if not top.is_dir():
            pytest.fail(f"{corpus.filename} did not unpack to {top.name}/")
        done.touch()
    return top
