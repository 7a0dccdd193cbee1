"""Benchmark: a digest to N subscribers through the full path (store, recording, outbox
bookkeeping, rendering, pooled sender) against raw aiosmtplib sending prebuilt bytes on the
same number of connections, both to the same canned-reply sink on 127.0.0.1 in one run.

    .venv/bin/python bench/digest_send.py [--n 20000 100000] [--connections 4] [--quick]
        [--repeat 3] [--postgres postgresql://postgres@127.0.0.1:5432/seriesfeed_bench]

With --postgres (a database of its own: the bench creates it, empties it and drops it at
the end), it also measures 1, 2 and 3 `seriesfeed run --sender-only` processes sharing one
outbox and --total-connections SMTP connections (process scaling, not concurrency), and
with --million N the digest record time and peak memory at N subscribers.
--curve C1 C2 ... prints msgs per CPU-second (msgs/s per core) of the full path, raw
aiosmtplib, aiosmtplib without its per-message rescans, and a minimal pipelining client.

Raw and full runs alternate, --repeat times per size, and the medians are reported, with
each run's figure and the sender's own CPU time per message (a machine shared with other
work slows both; CPU per message shows what each costs). The raw messages have the size of
the full path's digest.

The sink (bench/smtp_sink.py) reads in chunks and reports its own CPU time; each figure
comes with the sink's share of a core over the same interval, and a ratio is refused when
the sink used more than half a core (then the sink, not the sender, may be the limit).
The full path's phases (record, claim, render, build, SMTP, mark) are printed in
microseconds per message: the time spent in each, on the sender's critical path. Prints
figures; asserts nothing. Every loop is bounded; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from procstat import cpu_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SINK_LIMIT = 0.5  # of one core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sink_cpu(port: int) -> tuple[float, int]:
    """The sink's CPU seconds so far (user + system) and messages accepted."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, s.makefile("rb") as f:
        f.readline()
        s.sendall(b"XCPU\r\nQUIT\r\n")
        _, user, system, count = f.readline().split()
        return float(user) + float(system), int(count)


def write_config(folder: Path, port: int, connections: int, url: str | None = None) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('host = ""\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    text = text.replace('security = "starttls"', 'security = "none"')
    text = text.replace("connections = 4", f"connections = {connections}")
    text = text.replace("drain_seconds = 15\n", "drain_seconds = 0.5\n")
    if url:
        text = text.replace('url = "sqlite:///var/seriesfeed.sqlite3"', f'url = "{url}"')
    (folder / "config.toml").write_text(text, encoding="utf-8")
    return folder / "config.toml"


def add_subscribers(store: Any, n: int) -> None:
    from sqlalchemy import insert

    from seriesfeed.store.tables import subscribers

    now = datetime.now(UTC)
    with store.write() as conn:
        for start in range(0, n, 10_000):
            conn.execute(insert(subscribers), [
                {"email": f"r{i}@example.org", "email_key": f"r{i}@example.org",
                 "language": "en" if i % 5 else "es", "frequency": "daily",
                 "status": "confirmed", "created_at": now, "confirmed_at": now,
                 "last_seq": 0, "hard_bounces": 0, "name": f"Reader {i}"}
                for i in range(start, min(n, start + 10_000))])


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class Phases:
    """Time spent in each phase; SMTP is the wall time during which any send was open."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.open = 0
        self.opened_at = 0.0
        self.size = 0  # bytes of the first message sent

    def wrap(self, module: Any, name: str, phase: str) -> None:
        original: Callable[..., Any] = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0

        setattr(module, name, timed)

    def wrap_send(self, module: Any, name: str) -> None:
        original: Callable[..., Any] = getattr(module, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.size:
                self.size = len(args[-1])  # Drain.send(self, row, data): the message
            if self.open == 0:
                self.opened_at = time.perf_counter()
            self.open += 1
            try:
                return await original(*args, **kwargs)
            finally:
                self.open -= 1
                if self.open == 0:
                    self.seconds["smtp"] = (self.seconds.get("smtp", 0.0)
                                            + time.perf_counter() - self.opened_at)

        setattr(module, name, timed)


def full_path(n: int, port: int, connections: int) -> None:
    from seriesfeed import actions, messages
    from seriesfeed.actions import delivery as ob
    from seriesfeed.actions import digests as digest_verbs  # where send_digests records
    from seriesfeed.config import load_config
    from seriesfeed.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(write_config(Path(tmp), port, connections), env={})
        store = open_store(config.database.url, config.base_dir)
        add_subscribers(store, n)
        actions.import_entries(store, config, ROOT / "examples" / "iso-crisis-series-page.txt")
        phases = Phases()
        phases.wrap(digest_verbs, "record_digests", "record")
        for module, name, phase in ((ob, "_claim", "claim"), (ob, "render_digest", "render"),
                                    (messages, "digest_message", "build"),
                                    (ob, "_mark", "mark")):
            phases.wrap(module, name, phase)
        phases.wrap_send(ob.Drain, "send")  # the drain's SMTP step, one message
        cpu0, t0 = own_cpu(), time.perf_counter()
        summary = asyncio.run(actions.send_digests(store, config, scheduled=False))
        seconds, cpu = time.perf_counter() - t0, own_cpu() - cpu0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps({"rate": n / seconds, "seconds": seconds, "peak": peak,
                                      "summary": summary, "phases": phases.seconds,
                                      "cpu": cpu, "size": phases.size}))


def raw_message(size: int) -> bytes:
    head = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: raw\r\n"
            b"Message-ID: <x@example.org>\r\n\r\n")
    line = b"A line of a digest body, as long as the digest's lines=20\r\n"
    return head + line * max(1, (size - len(head)) // len(line))  # the digest's size


async def _noscan(n: int, port: int, connections: int, size: int) -> None:
    """aiosmtplib still the SMTP library, but the body sent as built: CRLF and dot-stuffing
    done once (here: the bytes already are), DATA by ``execute_command`` and the body by
    the protocol's ``write`` and ``read_response``, so neither of ``data()``'s two regex
    passes runs per message."""
    import aiosmtplib

    body = raw_message(size) + b".\r\n"  # CRLF only, no line starts with "."
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
               for _ in range(connections)]
    for c in clients:
        await c.connect()
    per = n // connections

    async def run(client: aiosmtplib.SMTP) -> None:
        assert client.protocol is not None
        for i in range(per):
            await client.mail("a@example.org")
            await client.rcpt(f"r{i}@example.org")
            reply = await client.execute_command(b"DATA")
            assert reply.code == 354
            client.protocol.write(body)
            reply = await client.protocol.read_response(timeout=60)
            assert reply.code == 250

    cpu0, t0 = own_cpu(), time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    seconds, cpu = time.perf_counter() - t0, own_cpu() - cpu0
    for c in clients:
        await c.quit()
    print("RESULT " + json.dumps({"rate": per * connections / seconds, "seconds": seconds,
                                  "peak": 0, "summary": "noscan", "phases": {}, "cpu": cpu,
                                  "size": len(body)}))


async def _pipelined(n: int, port: int, connections: int, size: int) -> None:
    """A minimal asyncio SMTP client with RFC 2920 pipelining (the sink offers it): MAIL,
    RCPT and DATA in one write, the body and the next transaction's commands in the next;
    replies read in bulk. Bench code only: it checks nothing but the reply codes."""
    body = raw_message(size) + b".\r\n"
    per = n // connections

    async def run() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(b"EHLO bench\r\n")
        while not (await reader.readline()).startswith(b"250 "):
            pass
        for i in range(per):
            writer.write(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<r%d@example.org>\r\n"
                         b"DATA\r\n" % i)
            replies = [await reader.readline() for _ in range(3)]
            if replies[2][:3] != b"354":
                raise SystemExit(f"pipelined: {replies!r}")
            writer.write(body)
            if (await reader.readline())[:3] != b"250":
                raise SystemExit("pipelined: the message was refused")
        writer.write(b"QUIT\r\n")
        await reader.readline()
        writer.close()

    cpu0, t0 = own_cpu(), time.perf_counter()
    await asyncio.gather(*(run() for _ in range(connections)))
    seconds, cpu = time.perf_counter() - t0, own_cpu() - cpu0
    print("RESULT " + json.dumps({"rate": per * connections / seconds, "seconds": seconds,
                                  "peak": 0, "summary": "pipelined", "phases": {},
                                  "cpu": cpu, "size": len(body)}))


async def _raw(n: int, port: int, connections: int, size: int) -> None:
    import aiosmtplib

    message = raw_message(size)
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
               for _ in range(connections)]
    for c in clients:
        await c.connect()
    per = n // connections

    async def run(client: aiosmtplib.SMTP) -> None:
        # the lowest-level calls, as the pool makes them (sendmail() adds its own work)
        for i in range(per):
            await client.mail("a@example.org")
            await client.rcpt(f"r{i}@example.org")
            await client.data(message)

    cpu0, t0 = own_cpu(), time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    seconds, cpu = time.perf_counter() - t0, own_cpu() - cpu0
    for c in clients:
        await c.quit()
    print("RESULT " + json.dumps({"rate": per * connections / seconds, "seconds": seconds,
                                  "peak": 0, "summary": "raw", "phases": {}, "cpu": cpu,
                                  "size": len(message)}))


def run_mode(mode: str, n: int, port: int, connections: int, size: int = 0
             ) -> dict[str, Any]:
    before, count0 = sink_cpu(port)
    proc = subprocess.run([sys.executable, __file__, "--mode", mode, "--n", str(n), "--port",
                           str(port), "--connections", str(connections), "--size", str(size)],
                          capture_output=True, text=True, timeout=3000, check=False)
    if proc.returncode:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    after, count1 = sink_cpu(port)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
    result["sink_share"] = (after - before) / result["seconds"]
    result["accepted"] = count1 - count0
    return result


def load_figure() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def report_pair(n: int, connections: int, raws: list[dict[str, Any]],
                fulls: list[dict[str, Any]]) -> None:
    """Medians over the repetitions (raw and full alternate, so drifting load hits both)."""
    raw_rate = median([r["rate"] for r in raws])
    full_rate = median([r["rate"] for r in fulls])
    raw_sink = max(r["sink_share"] for r in raws)
    full_sink = max(r["sink_share"] for r in fulls)
    raw_cpu = median([r["cpu"] / n * 1e6 for r in raws])
    full_cpu = median([r["cpu"] / n * 1e6 for r in fulls])
    raw_each = ", ".join(f"{r['rate']:.0f}" for r in raws)
    full_each = ", ".join(f"{r['rate']:.0f}" for r in fulls)
    print(f"--- {n} recipients, {connections} connections, {len(raws)} repetitions, "
          f"{fulls[0]['size']} bytes per message ({load_figure()})")
    print(f"raw aiosmtplib ceiling (MAIL, RCPT, DATA of prebuilt bytes): {raw_rate:.0f} "
          f"msgs/s median "
          f"(each: {raw_each}; sender CPU {raw_cpu:.0f} "
          f"µs/msg; sink at most {raw_sink:.0%} of a core; "
          f"{min(r['accepted'] for r in raws)} accepted)")
    print(f"full path (record, render, outbox, pool): {full_rate:.0f} msgs/s median "
          f"(each: {full_each}; sender CPU {full_cpu:.0f} "
          f"µs/msg; sink at most {full_sink:.0%} of a core; "
          f"{min(r['accepted'] for r in fulls)} accepted): {fulls[-1]['summary']}")
    phases = {name: median([f["phases"].get(name, 0.0) for f in fulls])
              for name in ("record", "claim", "render", "build", "smtp", "mark")}
    print("full path phases, µs per message: " + ", ".join(
        f"{name} {value / n * 1e6:.0f}" for name, value in phases.items())
        + f" (wall total {median([f['seconds'] for f in fulls]) / n * 1e6:.0f})")
    if max(raw_sink, full_sink) > SINK_LIMIT:
        print(f"ratio full/raw: not reported: the sink used more than {SINK_LIMIT:.0%} of a "
              "core, so it may be what limits the rates")
    else:
        print(f"ratio full/raw by sender CPU per message: {full_cpu / raw_cpu:.2f}x "
              f"(target <= 1.11x); msgs/s {full_rate / raw_rate:.0%} of raw's")


def curve(n: int, port: int, counts: list[int], size: int, repeat: int) -> None:
    """Messages per CPU-second of each sender (msgs/s per core), and msgs/s, by number of
    connections: the full path, raw aiosmtplib, aiosmtplib without its rescans, and the
    minimal pipelining client. Medians of ``repeat`` runs, alternating."""
    modes = ("full", "raw", "noscan", "pipelined")
    print(f"--- curve: {n} messages of {size} bytes; msgs per CPU-second of the sender "
          f"process (= msgs/s per core), msgs/s, sink share ({load_figure()})")
    for connections in counts:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(repeat):
            for mode in modes:
                runs[mode].append(run_mode(mode, n, port, connections, size))
        cells = []
        for mode in modes:
            per_core = median([n / r["cpu"] for r in runs[mode]])
            rate = median([r["rate"] for r in runs[mode]])
            sink = max(r["sink_share"] for r in runs[mode])
            flag = "" if sink <= SINK_LIMIT else " (sink past half a core: a floor)"
            cells.append(f"{mode} {per_core:.0f}/CPU-s {rate:.0f}/s sink {sink:.0%}{flag}")
        print(f"{connections} connection(s): " + "; ".join(cells))


# -- several sender processes on PostgreSQL ---------------------------------------------

def pg_prepare(n: int, port: int, connections: int, url: str, folder: Path,
               record: bool = True) -> None:
    from sqlalchemy import text

    from seriesfeed import actions
    from seriesfeed.actions.digests import record_digests
    from seriesfeed.config import load_config
    from seriesfeed.models import Frequency
    from seriesfeed.store import open_store

    config = load_config(write_config(folder, port, connections, url), env={})
    store = open_store(config.database.url, config.base_dir)
    store.migrate()
    with store.write() as conn:  # a fresh store each time: only this run's rows
        conn.execute(text("TRUNCATE outbox, digests, subscriber_series, subscribers, "
                          "entry_authors, entries, series_texts, series CASCADE"))
    add_subscribers(store, n)
    actions.import_entries(store, config, ROOT / "examples" / "iso-crisis-series-page.txt")
    if record:
        record_digests(store, config, Frequency.DAILY, datetime.now(UTC), scheduled=False)
    store.close()


def pg_record(url: str, folder: Path) -> None:
    """Record the daily digest for every subscriber already in the store, in this process
    alone: its wall time, CPU and peak memory are the recording's."""
    from seriesfeed.actions.digests import record_digests
    from seriesfeed.config import load_config
    from seriesfeed.models import Frequency
    from seriesfeed.store import open_store

    config = load_config(folder / "config.toml", env={})
    store = open_store(config.database.url, config.base_dir)
    cpu0, t0 = own_cpu(), time.perf_counter()
    summary = record_digests(store, config, Frequency.DAILY, datetime.now(UTC),
                             scheduled=False)
    seconds, cpu = time.perf_counter() - t0, own_cpu() - cpu0
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak,
                                  "summary": str(summary)}))


def pg_million(n: int, port: int, url: str) -> None:
    """The digest record time and peak memory at ``n`` subscribers on PostgreSQL."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        fill = subprocess.run([sys.executable, __file__, "--mode", "pgfill", "--n", str(n),
                               "--port", str(port), "--postgres", url, "--folder",
                               str(folder)], capture_output=True, text=True, timeout=3600,
                              check=False)
        if fill.returncode:
            raise SystemExit(f"PostgreSQL fill failed:\n{fill.stderr[-3000:]}")
        filled = time.perf_counter() - t0
        rec = subprocess.run([sys.executable, __file__, "--mode", "pgrecord", "--postgres", url,
                              "--folder", str(folder)], capture_output=True, text=True,
                             timeout=3600, check=False)
        if rec.returncode:
            raise SystemExit(f"recording failed:\n{rec.stderr[-3000:]}")
        line = next(x for x in rec.stdout.splitlines() if x.startswith("RESULT"))
        result = json.loads(line.split(" ", 1)[1])
        print(f"digest recorded for {n} subscribers on PostgreSQL: {result['seconds']:.1f} s "
              f"wall, {result['cpu']:.1f} s CPU of the recording process, peak "
              f"{result['peak']:.0f} MB ({result['summary']}; subscribers inserted in "
              f"{filled:.0f} s before; {load_figure()})")


def pg_database(url: str) -> None:
    """Create the bench's own database when missing (never the test suite's: it is emptied)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    if target.database in (None, "", "test", "postgres"):
        raise SystemExit(f"--postgres: use a database for the bench alone, not "
                         f"'{target.database}': the bench empties it")
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                            {"d": target.database}).scalar():
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    engine.dispose()


def pg_drop(url: str) -> None:
    """The bench's database goes when the bench ends."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    engine.dispose()


def pg_senders(n: int, port: int, total: int, url: str, processes: int) -> None:
    """``processes`` sender processes sharing ``total`` SMTP connections (each gets
    total / processes), so the figure is process scaling, not more concurrency."""
    connections = max(1, total // processes)
    from sqlalchemy import create_engine, text

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prep = subprocess.run([sys.executable, __file__, "--mode", "pgprep", "--n", str(n),
                               "--port", str(port), "--connections", str(connections),
                               "--postgres", url, "--folder", str(folder)],
                              capture_output=True, text=True, timeout=600, check=False)
        if prep.returncode:
            raise SystemExit(f"PostgreSQL preparation failed:\n{prep.stderr[-3000:]}")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        before, count0 = sink_cpu(port)
        exe = str(Path(sys.executable).with_name("seriesfeed"))
        started = time.perf_counter()
        procs = [subprocess.Popen([exe, "--config", str(folder / "config.toml"), "run",
                                   "--sender-only", "--no-web"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(processes)]
        cpu_start: tuple[float, float] | None = None  # senders', PostgreSQL's at the first mark
        try:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    left = conn.execute(text(
                        "SELECT count(*) FROM outbox WHERE state <> 'sent'")).scalar_one()
                if cpu_start is None and left < n:
                    cpu_start = (sum(cpu_of(p.pid) for p in procs), postgres_cpu())
                if not left:
                    break
                time.sleep(0.2)
            cpu_end = (sum(cpu_of(p.pid) for p in procs), postgres_cpu())
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=30)
        wall = time.perf_counter() - started
        after, count1 = sink_cpu(port)
        with engine.connect() as conn:
            first, last, sent = conn.execute(text(
                "SELECT min(sent_at), max(sent_at), count(*) FROM outbox "
                "WHERE state = 'sent'")).one()
        engine.dispose()
        span = max((last - first).total_seconds(), 1e-6)
        print(f"{processes} sender process(es), PostgreSQL, {connections} connections each "
              f"({connections * processes} in all): "
              f"{sent / span:.0f} msgs/s ({sent} sent in {span:.1f} s from first to last "
              f"mark; {wall:.1f} s with start-up; sink {(after - before) / wall:.0%} of a "
              f"core, {count1 - count0} accepted; {load_figure()})")
        if cpu_start is not None:
            # the CPU every message costs the machine while sending (start-up left out):
            # flat per message as processes are added means no coordination overhead, and
            # their sum against the cores says what limits the rate
            senders, database = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
            print(f"  CPU per message while sending: senders {senders / sent * 1e6:.0f} µs "
                  f"(all {processes} together), PostgreSQL {database / sent * 1e6:.0f} µs; "
                  f"senders + PostgreSQL used {(senders + database) / span:.2f} of "
                  f"{os.cpu_count()} cores")


def postgres_cpu() -> float:
    """CPU seconds so far of every PostgreSQL server process on this machine (the
    benchmark's connections' backends among them; 0 where /proc cannot tell)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="ascii") as f:
                if f.read().strip() not in ("postgres", "postmaster"):
                    continue
            total += cpu_of(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mode", choices=["full", "raw", "noscan", "pipelined", "pgprep",
                                           "pgfill", "pgrecord"])
    parser.add_argument("--million", type=int, default=0, metavar="N",
                        help="with --postgres: the digest record time and peak memory at N "
                             "subscribers (1000000 in the issue)")
    parser.add_argument("--total-connections", type=int, default=6,
                        help="with --postgres: SMTP connections shared by the senders")
    parser.add_argument("--curve", type=int, nargs="*", metavar="CONNECTIONS",
                        help="msgs per CPU-second of each sender at these connection counts")
    parser.add_argument("--port", type=int)
    parser.add_argument("--postgres", help="PostgreSQL URL for the sender-process figures")
    parser.add_argument("--senders-n", type=int, default=20_000)
    parser.add_argument("--folder")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "full":
        full_path(args.n[0], args.port, args.connections)
        return
    if args.mode in ("raw", "noscan", "pipelined"):
        sender = {"raw": _raw, "noscan": _noscan, "pipelined": _pipelined}[args.mode]
        asyncio.run(sender(args.n[0], args.port, args.connections, args.size or 10_000))
        return
    if args.mode in ("pgprep", "pgfill"):
        pg_prepare(args.n[0], args.port, args.connections, args.postgres, Path(args.folder),
                   record=args.mode == "pgprep")
        return
    if args.mode == "pgrecord":
        pg_record(args.postgres, Path(args.folder))
        return
    sizes = [1000] if args.quick else sorted(args.n)
    small = 500 if args.quick else 10_000
    port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "smtp_sink.py"), str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        print(f"start: {load_figure()}")
        peaks: dict[int, float] = {}
        size = run_mode("full", 100, port, args.connections)["size"]
        repeat = 1 if args.quick else args.repeat
        for n in sizes:
            raws, fulls = [], []
            for _ in range(repeat):
                raws.append(run_mode("raw", n, port, args.connections, size))
                fulls.append(run_mode("full", n, port, args.connections))
            peaks[n] = max(f["peak"] for f in fulls)
            report_pair(n, args.connections, raws, fulls)
        if small not in peaks:
            peaks[small] = run_mode("full", small, port, args.connections)["peak"]
        largest = max(sizes)
        print(f"peak memory: {peaks[small]:.0f} MB at {small}, {peaks[largest]:.0f} MB at "
              f"{largest} ({peaks[largest] - peaks[small]:+.0f} MB; target within 10 MB)")
        if args.curve:
            curve(min(sizes), port, args.curve, size, repeat)
        if args.postgres:
            pg_database(args.postgres)
            try:
                n = 1000 if args.quick else args.senders_n
                for processes in (1, 2, 3):
                    pg_senders(n, port, args.total_connections, args.postgres, processes)
                if args.million:
                    pg_million(args.million, port, args.postgres)
            finally:
                pg_drop(args.postgres)
    finally:
        sink.kill()
        sink.wait()


if __name__ == "__main__":
    main()
