"""Benchmark: `seriesfeed feeds build` of N entries, each in a process of its own, against a
raw feedgen script (bench/raw_feeds.py, its own process) that writes the same files, byte
for byte; then builds from a new process after one `entries add` and after one title
edit, and the CLI's own start-up. Every figure is the CPU time (user + system) of the
separate process, from wait4, beside its wall time; medians over the repetitions,
alternating. The package's source is compiled first (bytecode, as an installed package
has it).

    .venv/bin/python bench/feeds.py [--entries 20000] [--series 4] [--repeat 3] [--quick]
    .venv/bin/python bench/feeds.py --check [--entries 300]

After the cold runs the two folders are compared file by file (sorted relative paths,
bytes; the dot-files, ours' manifest and stamp, left out): a baseline that writes less
measures nothing, so the ratio is printed only when they are byte-identical, and otherwise
the first differing files with a short diff. Nothing is normalised: both take every date
from the store (a feed's updated and lastBuildDate are its newest entry's change, the
sitemap's lastmod each page's), none from the clock. ``--check`` builds a small store and
only compares (exit 1 on a difference): tests/test_bench_raw.py runs it, so a template
change that the baseline does not follow fails the suite.

The 304 figures are bench/http_304.py's (wrk, outside the server). Prints figures with the
load average; asserts nothing. Bounded: every process has a time limit; local files only.
"""

from __future__ import annotations

import argparse
import compileall
import difflib
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from procstat import Finished, load_figure, median, run_wait4

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).with_name("seriesfeed"))


def make_store(folder: Path, n: int, series: int = 4):  # type: ignore[no-untyped-def]
    """N entries in ``series`` series (4: 5,000 parts each at 20,000 entries, the worst
    case for an add, which renumbers every page of its series), one in five in Spanish,
    two authors each (the harness's own process: not measured)."""
    from seriesfeed import actions
    from seriesfeed.config import load_config
    from seriesfeed.importers import ImportBatch, ImportedEntry
    from seriesfeed.models import Author, Entry, Series, SeriesText
    from seriesfeed.store import open_store

    (folder / "config.toml").write_text((ROOT / "config.toml").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    config = load_config(folder / "config.toml", env={})
    store = open_store(config.database.url, config.base_dir)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    batch = ImportBatch(series=[Series(f"series-{k}", {"en": SeriesText(f"Series {k}", "About"),
                                                        "es": SeriesText(f"Serie {k}", "Sobre")})
                                for k in range(series)])
    for i in range(n):
        lang = "es" if i % 5 == 0 else "en"
        batch.entries.append(ImportedEntry(Entry(
            series=f"series-{i % series}", language=lang, title=f"Article number {i} about things",
            summary="A one-sentence summary of the article, about as long as the seed's. " * 2,
            published=start + timedelta(hours=3 * i), authors=(Author(f"Author {i % 97}"),
                                                               Author(f"Second {i % 13}")),
            url=f"https://example.org/{i}/", id=f"tag:example.org,2015:{i}"), i))
    actions.store_batch(store, config, batch, "bench", actions.ImportReport("bench", None))
    store.close()
    return config


def files_of(folder: Path) -> tuple[int, int]:
    found = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return len(found), sum(p.stat().st_size for p in found)


def compare(ours: Path, raw: Path, *, shown: int = 3) -> list[str]:
    """Empty when both folders hold the same files (dot-files left out) with the same bytes;
    else lines naming the first differing files, each with a short diff."""
    def listing(folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    mine, theirs = listing(ours), listing(raw)
    problems = [f"only in feeds build: {p}" for p in sorted(set(mine) - set(theirs))][:shown]
    problems += [f"only in the raw script: {p}" for p in sorted(set(theirs) - set(mine))
                 ][:shown]
    differing = 0
    for relative in sorted(set(mine) & set(theirs)):
        a, b = (ours / relative).read_bytes(), (raw / relative).read_bytes()
        if a == b:
            continue
        differing += 1
        if differing > shown:
            continue
        lines_a = a.decode("utf-8", "replace").splitlines()
        lines_b = b.decode("utf-8", "replace").splitlines()
        first = next((i for i, (x, y) in enumerate(zip(lines_a, lines_b, strict=False))
                      if x != y), min(len(lines_a), len(lines_b)))
        diff = difflib.unified_diff(lines_a[first:first + 3], lines_b[first:first + 3],
                                    f"feeds build/{relative}", f"raw/{relative}",
                                    lineterm="", n=0)
        problems.append(f"differs: {relative} (from line {first + 1}; {len(a)} against "
                        f"{len(b)} bytes)")
        problems.extend(f"    {line[:300]}" for line in diff)
    if differing > shown:
        problems.append(f"... {differing - shown} more differing files")
    return problems


def report_comparison(ours: Path, raw: Path) -> bool:
    """Print "byte-identical: N files" or what differs; True when identical."""
    problems = compare(ours, raw)
    if problems:
        print("NOT byte-identical: the raw script does not write what feeds build writes")
        for line in problems:
            print(line)
        return False
    print(f"byte-identical: {files_of(ours)[0]} files")
    return True


def check(entries: int) -> int:
    """A small store, one build by each, compared: 0 when byte-identical, else 1."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_store(folder, entries)
        cfg = str(folder / "config.toml")
        checked(run_wait4([EXE, "--config", cfg, "feeds", "build", "--out",
                           str(folder / "ours")], 600), "feeds build")
        checked(run_wait4([sys.executable, str(ROOT / "bench" / "raw_feeds.py"), cfg,
                           str(folder / "raw")], 600), "raw_feeds.py")
        print(f"store: {entries} entries")
        return 0 if report_comparison(folder / "ours", folder / "raw") else 1


def checked(done: Finished, what: str) -> Finished:
    if done.returncode:
        raise SystemExit(f"{what} failed:\n{done.stdout[-3000:]}")
    return done


def cpu_line(name: str, runs: list[Finished]) -> str:
    return (f"{name}: CPU {median([r.cpu for r in runs]):.2f} s median (each: "
            f"{', '.join(f'{r.cpu:.2f}' for r in runs)}), wall "
            f"{median([r.wall for r in runs]):.2f} s, peak {max(r.peak_mb for r in runs):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--series", type=int, default=4,
                        help="how many series the entries are spread over (default 4: an "
                             "add renumbers a quarter of the article pages)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="150 entries, one repetition: a smoke run of every step")
    parser.add_argument("--check", action="store_true",
                        help="only compare both folders of a small store (default 300 "
                             "entries); exit 1 when they differ")
    args = parser.parse_args()
    if args.check:
        raise SystemExit(check(300 if "--entries" not in sys.argv else args.entries))
    # as an installed package runs: with PYTHONDONTWRITEBYTECODE set, an editable install
    # would compile seriesfeed's own modules again in every process (~0.2 s of CPU each)
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    n = 150 if args.quick else args.entries
    repeat = 1 if args.quick else max(args.repeat, 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_store(folder, n, args.series)
        cfg = str(folder / "config.toml")
        print(f"store: {n} entries in {args.series} series; {load_figure()}")
        colds: list[Finished] = []
        raws: list[Finished] = []
        for k in range(repeat):  # alternating, each into a new folder: cold every time
            colds.append(checked(run_wait4([EXE, "--config", cfg, "feeds", "build", "--out",
                                            str(folder / f"cold{k}")], 1800), "feeds build"))
            raws.append(checked(run_wait4(
                [sys.executable, str(ROOT / "bench" / "raw_feeds.py"), cfg,
                 str(folder / f"raw{k}")], 1800), "raw_feeds.py"))
        ours_files = files_of(folder / "cold0")
        raw_files = files_of(folder / "raw0")
        print(f"files: feeds build {ours_files[0]} files, {ours_files[1]:,} bytes; raw feedgen "
              f"script {raw_files[0]} files, {raw_files[1]:,} bytes"
              + ("" if ours_files[0] == raw_files[0] else "  (NOT the same count)"))
        identical = report_comparison(folder / "cold0", folder / "raw0")
        print(cpu_line("full build, cold (`seriesfeed feeds build`, new process)", colds))
        print(cpu_line("raw feedgen script, the same file set (new process)", raws))
        cold_cpu = median([r.cpu for r in colds])
        if identical:
            print(f"ratio full/raw by CPU per build: "
                  f"{cold_cpu / median([r.cpu for r in raws]):.2f}x "
                  f"(target <= 1.5x; {load_figure()})")
        else:  # a baseline that writes something else measures nothing
            print("ratio full/raw: not printed, the folders differ (see above)")
        for k in range(1, repeat):
            shutil.rmtree(folder / f"cold{k}")
            shutil.rmtree(folder / f"raw{k}")

        out = str(folder / "cold0")
        again = checked(run_wait4([EXE, "--config", cfg, "feeds", "build", "--out", out], 600),
                        "feeds build")
        print(f"rebuild with nothing changed (new process): CPU {again.cpu:.2f} s "
              f"({again.cpu / cold_cpu:.0%} of a cold build): {again.stdout.strip()}")
        added: list[Finished] = []
        edited: list[Finished] = []
        for k in range(repeat):
            checked(run_wait4([EXE, "--config", cfg, "entries", "add", "--series", "series-1",
                               "--title", f"One more {k}", "--published",
                               f"{2016 + k}-06-01T12:00:00+00:00", "--byline", "New Author",
                               "--url", f"https://example.org/new-{k}/"], 300), "entries add")
            added.append(checked(run_wait4([EXE, "--config", cfg, "feeds", "build", "--out",
                                            out], 900), "feeds build"))
            checked(run_wait4([EXE, "--config", cfg, "entries", "add", "--series", "series-1",
                               "--title", f"One more {k}, its title corrected", "--published",
                               f"{2016 + k}-06-01T12:00:00+00:00", "--byline", "New Author",
                               "--url", f"https://example.org/new-{k}/"], 300), "entries add")
            edited.append(checked(run_wait4([EXE, "--config", cfg, "feeds", "build", "--out",
                                             out], 900), "feeds build"))
        for name, runs in (("one `entries add` into a series", added),
                           ("one title edit", edited)):
            cpu = median([r.cpu for r in runs])
            print(f"{cpu_line(f'build from a new process after {name}', runs)}; "
                  f"{cpu / cold_cpu:.0%} of a cold build's CPU (target <= 10%): "
                  f"{runs[-1].stdout.strip()}")
        starts = {"seriesfeed --help": [EXE, "--help"],
                  "seriesfeed status": [EXE, "--config", cfg, "status"]}
        for name, argv in starts.items():
            runs = [checked(run_wait4(argv, 120), name)
                    for _ in range(1 if args.quick else max(repeat, 3))]
            print(f"{cpu_line(name, runs)}; {median([r.cpu for r in runs]) / cold_cpu:.1%} of "
                  "a cold build")
        print(f"end: {load_figure()}")


if __name__ == "__main__":
    main()
