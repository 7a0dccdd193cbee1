"""Benchmark: polling a source of N entries from a server on 127.0.0.1: the first poll (import),
a conditional poll answered 304 (no parse), the same document re-downloaded and re-parsed
without validators (what a poller that ignores ETag pays), and a poll with one entry edited.

    .venv/bin/python bench/sources.py [--entries 2000] [--polls 50] [--quick]

Prints figures; asserts nothing. Every loop is bounded; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.http_source import Route, source_server  # noqa: E402

from seriesfeed.actions import sources  # noqa: E402
from seriesfeed.config import load_config  # noqa: E402
from seriesfeed.store import open_store  # noqa: E402


def atom(n: int, edited: int | None = None) -> bytes:
    items = []
    for i in range(n):
        title = f"Article {i}" + (" (corrected)" if i == edited else "")
        day = 1 + i % 28
        items.append(
            f"<entry><id>urn:uuid:bench-{i}</id><title>{title}</title>"
            f"<link rel='alternate' href='https://news.example/{i}/'/>"
            f"<author><name>Writer {i % 7}</name></author>"
            f"<published>2026-11-{day:02d}T10:00:{i % 60:02d}Z</published>"
            f"<updated>2026-11-{day:02d}T10:00:{i % 60:02d}Z</updated>"
            f"<summary>Summary of article {i}, a sentence of some length.</summary></entry>")
    return ("<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom' "
            "xml:lang='en'><id>urn:bench</id><title>Bench</title>"
            "<updated>2026-11-28T10:00:00Z</updated>" + "".join(items) + "</feed>").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, polls = (200, 10) if args.quick else (args.entries, args.polls)
    with tempfile.TemporaryDirectory() as tmp, source_server() as server:
        folder = Path(tmp)
        body = atom(n)
        server.routes["/feed.xml"] = Route(body)
        server.routes["/plain.xml"] = Route(body, conditional=False)
        text = (ROOT / "config.toml").read_text(encoding="utf-8")
        text += (f'\n[sources.bench]\nurl = "{server.url("/feed.xml")}"\nseries = "bench"\n'
                 f'[sources.plain]\nurl = "{server.url("/plain.xml")}"\nseries = "bench"\n')
        (folder / "config.toml").write_text(text.replace(
            'url = "sqlite:///var/seriesfeed.sqlite3"',
            f'url = "sqlite:///{folder / "b.sqlite3"}"'), encoding="utf-8")
        config = load_config(folder / "config.toml", env={})
        store = open_store(config.database.url, config.base_dir)

        def poll(name: str) -> sources.PollResult:
            return asyncio.run(sources.poll_source(store, config, config.sources[name],
                                                   force=True))

        print(f"source: Atom, {n} entries, {len(body) / 1024:.0f} KiB")
        start = time.perf_counter()
        first = poll("bench")
        took = time.perf_counter() - start
        print(f"first poll (import): {took * 1000:.0f} ms ({first.message})")
        start = time.perf_counter()
        for _ in range(polls):
            assert poll("bench").outcome == "not-modified"
        cond = (time.perf_counter() - start) / polls
        print(f"conditional poll (304, no parse): {cond * 1000:.1f} ms per poll over {polls}")
        start = time.perf_counter()
        for _ in range(max(1, polls // 5)):
            poll("plain")
        plain = (time.perf_counter() - start) / max(1, polls // 5)
        print(f"unconditional poll (200, parse, 0 changes): {plain * 1000:.1f} ms per poll")
        print(f"ratio unconditional/304: {plain / cond:.0f}x")
        server.routes["/feed.xml"] = Route(atom(n, edited=n // 2))
        start = time.perf_counter()
        edited = poll("bench")
        print(f"poll with one entry edited: {(time.perf_counter() - start) * 1000:.0f} ms "
              f"({edited.message})")
        store.close()


if __name__ == "__main__":
    main()
