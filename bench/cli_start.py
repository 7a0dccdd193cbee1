"""Benchmark: how long a command takes to start and answer, as an operator or a cron job
sees it: `seriesfeed --help`, `entries list`, `status`, `entries add` (the same entry
again) and `feeds build` (into a folder built before) on a SQLite store already at the
newest schema (the common case), against the interpreter importing the CLI alone, in one
run, alternating.

    .venv/bin/python bench/cli_start.py [--repeat 7]

The CLI's own start (imports, config, store) is most of what the test suite's few hundred
subprocesses and every cron-driven `digest send` pay. Prints medians in milliseconds, wall
and CPU (user + system, from wait4), with the load average; asserts nothing. Only local
files. The package's source is compiled first: with PYTHONDONTWRITEBYTECODE set (an
editable install never compiles it) every process would compile seriesfeed's own modules
again, some 0.2 s of CPU that an installed package does not pay.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv`` in a process of its own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text('[database]\nurl = "sqlite:///store.sqlite3"\n', encoding="utf-8")
        cli = [sys.executable, "-m", "seriesfeed", "--config", str(config)]
        subprocess.run([*cli, "init"], check=True, capture_output=True)
        out = str(Path(folder) / "out")
        subprocess.run([*cli, "feeds", "build", "--out", out], check=True, capture_output=True)
        add = [*cli, "entries", "add", "--series", "bench", "--series-title", "Bench",
               "--title", "Bench", "--published", "2020-01-01"]
        commands = {
            "import seriesfeed.cli": [sys.executable, "-c", "import seriesfeed.cli"],
            "--help": [*cli, "--help"],
            "entries list": [*cli, "entries", "list"],
            "status": [*cli, "status"],
            "entries add": add,  # the same entry again: an update, a write transaction
            "feeds build": [*cli, "feeds", "build", "--out", out],
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(max(args.repeat, 1)):  # alternate: a drifting machine hits all alike
            for name, argv in commands.items():
                times[name].append(timed(argv))
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; {args.repeat} runs each, medians")
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values) * 1000
        cpu = statistics.median(c for _, c in values) * 1000
        print(f"  {name:24s} {wall:7.0f} ms wall {cpu:7.0f} ms CPU"
              f"   (CPU min {min(c for _, c in values) * 1000:.0f},"
              f" max {max(c for _, c in values) * 1000:.0f})")


if __name__ == "__main__":
    main()
