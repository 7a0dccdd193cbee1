"""Benchmark: building every feed from a store of N entries (cold cache, one store read)
against raw feedgen building as many documents from memory; rebuilds with nothing changed and
after one new entry (what is written); conditional GETs (304/s) against a bare Starlette
endpoint serving the same bytes, side by side, several repetitions, medians.

    .venv/bin/python bench/feeds.py [--entries 20000] [--repeat 5] [--quick]

Prints figures; asserts nothing. Every loop is bounded in count and time; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from feedgen.feed import FeedGenerator
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from seriesfeed import actions
from seriesfeed.actions.feeds import FeedCache, plan_feeds
from seriesfeed.config import load_config
from seriesfeed.importers import ImportBatch, ImportedEntry
from seriesfeed.models import Author, Entry, Series, SeriesText
from seriesfeed.publish import publish
from seriesfeed.store import entries as q
from seriesfeed.store import open_store
from seriesfeed.web import create_app

ROOT = Path(__file__).resolve().parent.parent


def make_store(folder: Path, n: int):  # type: ignore[no-untyped-def]
    (folder / "config.toml").write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8").replace(
            "max_entries = 50", "max_entries = 50"), encoding="utf-8")
    config = load_config(folder / "config.toml", env={})
    store = open_store(config.database.url, config.base_dir)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    batch = ImportBatch(series=[Series(f"series-{k}", {"en": SeriesText(f"Series {k}", "About"),
                                                        "es": SeriesText(f"Serie {k}", "Sobre")})
                                for k in range(4)])
    for i in range(n):
        lang = "es" if i % 5 == 0 else "en"
        batch.entries.append(ImportedEntry(Entry(
            series=f"series-{i % 4}", language=lang, title=f"Article number {i} about things",
            summary="A one-sentence summary of the article, about as long as the seed's. " * 2,
            published=start + timedelta(hours=3 * i), authors=(Author(f"Author {i % 97}"),
                                                               Author(f"Second {i % 13}")),
            url=f"https://example.org/{i}/", id=f"tag:example.org,2015:{i}"), i))
    actions.store_batch(store, config, batch, "bench", actions.ImportReport("bench", None))
    return config, store


def raw_feedgen(entries: list[Entry], repeat_docs: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat_docs):
        for kind in ("atom", "rss"):
            fg = FeedGenerator()
            fg.id("urn:x")
            fg.title("T")
            fg.link(href="https://example.org/", rel="alternate")
            fg.description("D")
            fg.language("en")
            for e in entries:
                fe = fg.add_entry(order="append")
                fe.id(e.id)
                fe.title(e.title)
                fe.summary(e.summary)
                fe.link(href=e.url)
                fe.published(e.published)
                fe.updated(e.published)
                for a in e.authors:
                    fe.author({"name": a.name})
            fg.atom_str(pretty=True) if kind == "atom" else fg.rss_str(pretty=True)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: object, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           access_log=False, lifespan="off"))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def load(port: int, path: str, etag: str | None, clients: int, requests: int,
         limit_s: float) -> tuple[int, float]:
    done = [0] * clients
    stop_at = time.monotonic() + limit_s

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"If-None-Match": etag, "Accept-Encoding": "identity"} if etag else {}
        for _ in range(requests):
            if time.monotonic() > stop_at:
                break
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            done[k] += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), time.perf_counter() - started


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def load_figure() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="small N, short load")
    parser.add_argument("--repeat", type=int, default=5, help="304/bare repetitions")
    args = parser.parse_args()
    n = 500 if args.quick else args.entries
    requests = 200 if args.quick else 2000
    repeat = 2 if args.quick else args.repeat
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        config, store = make_store(folder, n)
        print(f"store: {n} entries in {time.perf_counter() - t0:.2f} s ({load_figure()})")

        # the feed build from a cold cache: one store read, every feed document
        t0 = time.perf_counter()
        feed_docs = plan_feeds(config, store, cache=FeedCache())
        cold = time.perf_counter() - t0
        xml = [d for d in feed_docs if d.path.endswith(".xml")]
        current = [d for d in xml if "/archive/" not in d.path]
        archives = [d for d in xml if "/archive/" in d.path]
        with store.read() as conn:
            sample = q.list_entries(conn, language="en", limit=config.feeds.max_entries)
            every = q.list_entries(conn)
        # raw feedgen: as many Atom/RSS documents of the same sizes, from memory
        raw = raw_feedgen(sample, len(current) // 2)
        raw += raw_feedgen(every[:config.feeds.max_entries], len(archives) // 2)
        print(f"raw feedgen, {len(xml)} Atom/RSS documents from memory: {raw:.3f} s")
        print(f"feed build, cold (one store read; {len(feed_docs)} documents: Atom, RSS, JSON "
              f"Feed, archives): {cold:.3f} s ({load_figure()})")
        print(f"ratio full/raw (feed build/raw feedgen): {cold / raw:.2f} (target <= 2)")

        out = folder / "public"
        t0 = time.perf_counter()
        report = actions.build_feeds(store, config, out)
        full = time.perf_counter() - t0
        print(f"full build_feeds (feeds and series pages, writes; {len(report.written)} files): "
              f"{full:.3f} s")
        t0 = time.perf_counter()
        again = actions.build_feeds(store, config, out)
        rebuild = time.perf_counter() - t0
        print(f"rebuild with nothing changed: {rebuild:.3f} s, {len(again.written)} files "
              f"written ({rebuild / full:.0%} of the full build)")
        actions.add_entry(store, config, Entry(
            series="series-1", language="en", title="One more", summary="New.",
            published=datetime(2030, 1, 1, tzinfo=UTC), authors=(Author("New Author"),),
            url="https://example.org/new/", id="tag:example.org,2030:new"))
        t0 = time.perf_counter()
        docs = plan_feeds(config, store)
        feeds_only = time.perf_counter() - t0
        changed = publish(docs, out)
        print(f"rebuild of the feeds after one new entry: {feeds_only:.3f} s, "
              f"{len(changed.written)} files written ({', '.join(changed.written)}; "
              f"{load_figure()})")
        t0 = time.perf_counter()
        after = actions.build_feeds(store, config, out)
        print(f"build_feeds after it (pages too): {time.perf_counter() - t0:.3f} s, "
              f"{len(after.written)} files written")

        port, bare_port = free_port(), free_port()
        app_server = serve(create_app(config, store), port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/feeds/en/atom.xml", headers={"Accept-Encoding": "identity"})
        first = conn.getresponse()
        body = first.read()
        etag = first.getheader("ETag")
        conn.close()
        bare = Starlette(routes=[Route("/", lambda r: Response(
            body, media_type="application/atom+xml"))])  # the same bytes
        bare_server = serve(bare, bare_port)
        ours, theirs = [], []
        for _ in range(repeat):  # side by side, alternating, so drifting load hits both
            got, secs = load(port, "/feeds/en/atom.xml", etag, 4, requests, 20)
            ours.append(got / secs)
            got, secs = load(bare_port, "/", None, 4, requests, 20)
            theirs.append(got / secs)
        print(f"conditional GETs (304): {median(ours):.0f}/s median of {repeat} "
              f"({', '.join(f'{x:.0f}' for x in ours)})")
        print(f"bare Starlette, the same {len(body)} bytes: {median(theirs):.0f}/s median "
              f"({', '.join(f'{x:.0f}' for x in theirs)}; {load_figure()})")
        print(f"ratio 304/bare: {median(ours) / median(theirs):.0%} (target >= 50%)")
        app_server.should_exit = True
        bare_server.should_exit = True
        time.sleep(0.3)
        store.close()


if __name__ == "__main__":
    main()
