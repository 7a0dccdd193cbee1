"""Benchmark: how long a command takes to start and answer, as an operator or a cron job
sees it: `seriesfeed entries list` and `seriesfeed status` on a SQLite store already at the
newest schema (the common case), against the interpreter importing the CLI alone, in one
run, alternating.

    .venv/bin/python bench/cli_start.py [--repeat 7]

The CLI's own start (imports, config, store) is most of what the test suite's few hundred
subprocesses and every cron-driven `digest send` pay. Prints medians in milliseconds with
the load average; asserts nothing. Only local files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text('[database]\nurl = "sqlite:///store.sqlite3"\n', encoding="utf-8")
        cli = [sys.executable, "-m", "seriesfeed", "--config", str(config)]
        subprocess.run([*cli, "init"], check=True, capture_output=True)
        commands = {
            "import seriesfeed.cli": [sys.executable, "-c", "import seriesfeed.cli"],
            "entries list": [*cli, "entries", "list"],
            "status": [*cli, "status"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(max(args.repeat, 1)):  # alternate: a drifting machine hits all alike
            for name, argv in commands.items():
                times[name].append(timed(argv))
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; {args.repeat} runs each, medians")
    for name, values in times.items():
        print(f"  {name:24s} {statistics.median(values) * 1000:7.0f} ms"
              f"   (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})")


if __name__ == "__main__":
    main()
