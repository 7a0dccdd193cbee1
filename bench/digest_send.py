"""Benchmark: a digest to N subscribers through the full path (store, recording, outbox
bookkeeping, rendering, pooled sender) against raw aiosmtplib sending prebuilt bytes on the
same number of connections, both to a canned-reply sink on 127.0.0.1.

    .venv/bin/python bench/digest_send.py [--n 100000] [--connections 4] [--quick]

Prints rates, their ratio, seconds and peak memory at 10,000 and at N. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def full_path(n: int, port: int, connections: int) -> None:
    from sqlalchemy import insert

    from seriesfeed import actions
    from seriesfeed.config import load_config
    from seriesfeed.store import open_store
    from seriesfeed.store.tables import subscribers

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = (ROOT / "config.toml").read_text(encoding="utf-8")
        text = text.replace('host = ""\nport = 587', f'host = "127.0.0.1"\nport = {port}')
        text = text.replace('security = "starttls"', 'security = "none"')
        text = text.replace("connections = 4", f"connections = {connections}")
        (folder / "config.toml").write_text(text, encoding="utf-8")
        config = load_config(folder / "config.toml", env={})
        store = open_store(config.database.url, config.base_dir)
        now = datetime.now(UTC)
        with store.write() as conn:
            for start in range(0, n, 10_000):
                conn.execute(insert(subscribers), [
                    {"email": f"r{i}@example.org", "email_key": f"r{i}@example.org",
                     "language": "en" if i % 5 else "es", "frequency": "daily",
                     "status": "confirmed", "created_at": now, "confirmed_at": now,
                     "last_seq": 0, "hard_bounces": 0, "name": f"Reader {i}"}
                    for i in range(start, min(n, start + 10_000))])
        actions.import_entries(store, config, ROOT / "examples" / "iso-crisis-series-page.txt")
        t0 = time.perf_counter()
        summary = asyncio.run(actions.send_digests(store, config, scheduled=False))
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"RESULT {n / seconds:.0f} {seconds:.2f} {peak:.0f} {summary}")


async def _raw(n: int, port: int, connections: int) -> None:
    import aiosmtplib

    message = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: raw\r\n"
               b"Message-ID: <x@example.org>\r\n\r\n" + b"A line of a digest body.\r\n" * 400)
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
               for _ in range(connections)]
    for c in clients:
        await c.connect()
    per = n // connections

    async def run(client: aiosmtplib.SMTP) -> None:
        for i in range(per):
            await client.sendmail("a@example.org", [f"r{i}@example.org"], message)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    seconds = time.perf_counter() - t0
    for c in clients:
        await c.quit()
    print(f"RESULT {per * connections / seconds:.0f} {seconds:.2f} 0 raw")


def run_mode(mode: str, n: int, port: int, connections: int) -> tuple[float, float, float, str]:
    proc = subprocess.run([sys.executable, __file__, "--mode", mode, "--n", str(n), "--port",
                           str(port), "--connections", str(connections)],
                          capture_output=True, text=True, timeout=3000, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    _, rate, seconds, peak, rest = line.split(" ", 4)
    return float(rate), float(seconds), float(peak), rest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mode", choices=["full", "raw"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.mode == "full":
        full_path(args.n, args.port, args.connections)
        return
    if args.mode == "raw":
        asyncio.run(_raw(args.n, args.port, args.connections))
        return
    n = 1000 if args.quick else args.n
    small = min(10_000, n) if not args.quick else 500
    port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "smtp_sink.py"), str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        raw_rate, raw_s, _, _ = run_mode("raw", n, port, args.connections)
        full_rate, full_s, peak_n, summary = run_mode("full", n, port, args.connections)
        _, _, peak_small, _ = run_mode("full", small, port, args.connections)
        print(f"raw aiosmtplib, {args.connections} connections, prebuilt bytes: "
              f"{raw_rate:.0f} msgs/s ({raw_s:.1f} s for {n})")
        print(f"full path (record, render, outbox, pool): {full_rate:.0f} msgs/s "
              f"({full_s:.1f} s for {n}): {summary}")
        print(f"ratio full/raw: {full_rate / raw_rate:.0%} (target >= 70%)")
        print(f"peak memory: {peak_small:.0f} MB at {small}, {peak_n:.0f} MB at {n} "
              f"({peak_n / peak_small - 1:+.0%}; target within 20%)")
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    main()
