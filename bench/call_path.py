"""How many of our modules one `seriesfeed digest send` walks through, and how often it goes
back and forth between them.

    .venv/bin/python bench/call_path.py [--subscribers 3]

A fresh store (the shipped config.toml in a temporary folder: SQLite and a Maildir) gets
the seed series and a few confirmed subscribers; then `digest send` runs in this process
under ``sys.setprofile`` (and in its worker threads). Every call from a function of one
seriesfeed module into a function of another is a hop. Printed: the modules touched, the
distinct hops (caller module -> callee module), and for each module how many distinct
modules call into it (a module that many others re-enter is one whose job leaks). The
figures depend on the code's shape only, not on the machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = str(ROOT / "src" / "seriesfeed")
LOOP = str(Path("asyncio") / "events.py")  # Handle._run: where the loop starts a callback


def _module(frame: FrameType) -> str | None:
    path = frame.f_code.co_filename
    if not path.startswith(PACKAGE):
        return None
    rel = Path(path).relative_to(PACKAGE).with_suffix("")
    return ".".join(("seriesfeed", *rel.parts)).removesuffix(".__init__")


def _cli(args: list[str]) -> None:
    from seriesfeed.cli import cli

    try:
        cli.main(args, prog_name="seriesfeed", standalone_mode=False)
    except SystemExit as exc:  # click's exit for a non-zero status
        if exc.code:
            raise


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=3)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(ROOT / "config.toml", folder / "config.toml")
        config = ["--config", str(folder / "config.toml")]
        _cli([*config, "init"])
        for i in range(opts.subscribers):  # before the import: the articles are new to them
            _cli([*config, "subscribers", "add", f"reader{i}@example.org", "--confirmed",
                  "--frequency", "daily"])
        _cli([*config, "import", str(ROOT / "examples" / "iso-crisis-series-page.txt")])
        hops: Counter[tuple[str, str]] = Counter()
        touched: set[str] = set()

        def profile(frame: FrameType, event: str, _: Any) -> None:
            # a module's body runs when it is first imported (a command loads its module
            # when it is looked up, its verbs and renderers when they are used): an import,
            # not a call from the importer
            if event != "call" or frame.f_code.co_name == "<module>":
                return
            callee = _module(frame)
            if callee is None:
                return
            touched.add(callee)
            caller_frame = frame.f_back
            while caller_frame is not None and _module(caller_frame) is None:
                if caller_frame.f_code.co_filename.endswith(LOOP):
                    return  # a task the event loop runs: its creator is not its caller
                caller_frame = caller_frame.f_back  # through a library (click, sqlalchemy)
            caller = _module(caller_frame) if caller_frame is not None else None
            if caller is not None and caller != callee:
                hops[(caller, callee)] += 1

        sys.setprofile(profile)
        threading.setprofile(profile)  # the store calls run in worker threads
        try:
            _cli([*config, "digest", "send", "--frequency", "daily"])
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
            sys.setprofile(None)
    # opening the store checks its schema revision against the migration scripts: not the
    # digest's path, and the same for every command
    schema = "seriesfeed.store.migrations"
    touched = {m for m in touched if not m.startswith(schema)}
    hops = Counter({pair: n for pair, n in hops.items()
                    if not any(m.startswith(schema) for m in pair)})
    into: Counter[str] = Counter(callee for _, callee in hops)
    print(f"modules touched by `digest send`: {len(touched)} (the schema check left out)")
    print(f"distinct hops between them (caller -> callee): {len(hops)}")
    print("modules entered from the most others: " + ", ".join(
        f"{m} ({n})" for m, n in into.most_common(6)))
    both = sorted({tuple(sorted(pair)) for pair in hops if pair[::-1] in hops})
    print(f"pairs that call each other both ways: {len(both)}"
          + "".join(f"\n  {a} <-> {b}" for a, b in both))
    for (caller, callee), n in sorted(hops.items()):
        print(f"  {caller} -> {callee}  ({n} calls)")


if __name__ == "__main__":
    main()
