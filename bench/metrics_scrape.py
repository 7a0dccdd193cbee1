"""Benchmark: what one /metrics scrape (and one /healthz) costs on a store of N subscribers
with one outbox row each, since each scrape computes the status report.

    .venv/bin/python bench/metrics_scrape.py [--n 100000] [--scrapes 20] [--quick]

Prints milliseconds per scrape (median and worst) and the exposition's size. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="n=2000, 5 scrapes")
    args = parser.parse_args()
    n, scrapes = (2000, 5) if args.quick else (args.n, args.scrapes)

    from sqlalchemy import insert
    from starlette.testclient import TestClient

    from seriesfeed.config import load_config
    from seriesfeed.store import open_store
    from seriesfeed.store.tables import digests, outbox, subscribers
    from seriesfeed.web import create_app

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(f'[database]\nurl = "sqlite:///{tmp}/s.sqlite3"\n'
                       '[metrics]\nenabled = true\ntoken = "bench-token-0123456789"\n',
                       encoding="utf-8")
        config = load_config(cfg, env={})
        store = open_store(config.database.url, config.base_dir)
        now = datetime.now(UTC)
        states = ("sent", "sent", "sent", "queued", "failed")
        with store.write() as conn:
            conn.execute(insert(digests).values(id=1, language="en", frequency="daily",
                                                period="2026-12-01", from_seq=0, to_seq=1,
                                                created_at=now))
            conn.execute(insert(subscribers), [
                {"id": i + 1, "email": f"r{i}@example.org", "email_key": f"r{i}@example.org",
                 "language": "en" if i % 3 else "es", "frequency": "daily",
                 "status": "confirmed", "created_at": now, "last_seq": 0, "hard_bounces": 0}
                for i in range(n)])
            conn.execute(insert(outbox), [
                {"kind": "digest", "digest_id": 1, "subscriber_id": i + 1,
                 "recipient": f"r{i}@example.org", "message_id": f"<d.1.{i}@example.org>",
                 "state": states[i % 5], "attempts": 1 + i % 2, "created_at": now,
                 "sent_at": now if states[i % 5] == "sent" else None}
                for i in range(n)])
        client = TestClient(create_app(config, store))
        auth = {"Authorization": "Bearer bench-token-0123456789"}
        for path, headers in (("/metrics", auth), ("/healthz", {})):
            times, size = [], 0
            for _ in range(scrapes):
                started = time.perf_counter()
                reply = client.get(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                size = len(reply.content)
                assert reply.status_code == 200
            print(f"{path} on {n} subscribers / {n} outbox rows: median "
                  f"{statistics.median(times):.1f} ms, worst {max(times):.1f} ms, "
                  f"{size} bytes")
        store.close()


if __name__ == "__main__":
    main()
