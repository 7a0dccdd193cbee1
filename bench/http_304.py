"""Benchmark: conditional GETs (304) measured from outside with wrk, against
`seriesfeed serve` in its own process and against a bare Starlette app in its own process
(bench/bare_304.py) serving the same bytes with the same ETag, alternating, medians.

    .venv/bin/python bench/http_304.py [--seconds 8] [--repeat 5] [--connections 4] [--quick]

Each figure: requests/s (wrk's), the server's CPU milliseconds per 304 (from
/proc/<pid>/stat of the server process over exactly the wrk run) and wrk's own share of a
core (from wait4). The ratio is by server CPU per 304 and is refused when wrk used more than
half a core (then the client, not the server, may be the limit). wrk is installed with
apt-get when missing and the bench runs as root; otherwise it refuses with the command to
run. Prints figures; asserts nothing (but stops when a response is not the expected 304).
Bounded: every wrk run has a duration, the servers are stopped in `finally`; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from procstat import cpu_of, free_port, load_figure, median, run_wait4, wait_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRK_LIMIT = 0.5  # of one core
PATH = "/feeds/en/atom.xml"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it (apt-get install -y wrk)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env,
                       capture_output=True, timeout=600, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("this bench needs wrk, an HTTP load generator outside the servers' "
                     "process: install it with `apt-get install wrk` (Debian/Ubuntu) and run "
                     "the bench again")


def make_site(folder: Path) -> Path:
    """A SQLite store holding the example series, its config, as an operator has them."""
    config = folder / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{folder}/store.sqlite3"\n'
                      f'[web]\nhost = "127.0.0.1"\n', encoding="utf-8")
    exe = str(Path(sys.executable).with_name("seriesfeed"))
    subprocess.run([exe, "--config", str(config), "import",
                    str(ROOT / "examples" / "iso-crisis-series-page.txt")],
                   check=True, capture_output=True, timeout=120)
    return config


def fetch(port: int, etag: str | None = None) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    try:
        conn.request("GET", PATH, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read(), reply.getheader("ETag") or ""
    finally:
        conn.close()


def wrk_run(wrk: str, port: int, pid: int, etag: str, seconds: float,
            connections: int) -> dict[str, float]:
    """One wrk run; the server's CPU over it from /proc, wrk's own from wait4."""
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
            "-H", f"If-None-Match: {etag}", "-H", "Accept-Encoding: identity",
            f"http://127.0.0.1:{port}{PATH}"]
    before = cpu_of(pid)
    done = run_wait4(argv, timeout=seconds + 30)
    server = cpu_of(pid) - before
    if done.returncode:
        raise SystemExit(f"wrk failed:\n{done.stdout}")
    total = re.search(r"(\d+) requests in", done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if not total or not rate:
        raise SystemExit(f"cannot read wrk's output:\n{done.stdout}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    errors = re.search(r"Socket errors: (.*)", done.stdout)
    if bad or errors:
        raise SystemExit(f"not every answer was a 304:\n{done.stdout}")
    requests = int(total.group(1))
    return {"rate": float(rate.group(1)), "requests": requests,
            "cpu_ms": server / max(requests, 1) * 1000, "server_share": server / done.wall,
            "wrk_share": done.cpu / done.wall}


def start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, 30)
    except SystemExit:
        proc.kill()
        _, err = proc.communicate()
        raise SystemExit(f"{argv[0]} did not listen:\n{err.decode()[-2000:]}") from None
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def each(runs: list[dict[str, float]], key: str, fmt: str) -> str:
    return ", ".join(format(r[key], fmt) for r in runs)


def line(name: str, runs: list[dict[str, float]]) -> str:
    return (f"{name}: {median([r['rate'] for r in runs]):.0f} requests/s median "
            f"(each: {each(runs, 'rate', '.0f')}); server CPU "
            f"{median([r['cpu_ms'] for r in runs]):.3f} ms per 304 "
            f"(each: {each(runs, 'cpu_ms', '.3f')}); server "
            f"{median([r['server_share'] for r in runs]):.0%} of a core; wrk at most "
            f"{max(r['wrk_share'] for r in runs):.0%} of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1 s runs, one repetition")
    args = parser.parse_args()
    seconds, repeat = (1.0, 1) if args.quick else (args.seconds, max(args.repeat, 1))
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = make_site(folder)
        ours_port, bare_port = free_port(), free_port()
        exe = str(Path(sys.executable).with_name("seriesfeed"))
        ours = start([exe, "--config", str(config), "serve", "--host", "127.0.0.1",
                      "--port", str(ours_port)], ours_port)
        bare: subprocess.Popen[bytes] | None = None
        try:
            status, body, etag = fetch(ours_port)
            if status != 200 or not etag:
                raise SystemExit(f"{PATH} answered {status} without an ETag")
            (folder / "body").write_bytes(body)
            bare = start([sys.executable, str(HERE / "bare_304.py"), str(bare_port), PATH,
                          str(folder / "body"), etag], bare_port)
            for port in (ours_port, bare_port):
                if fetch(port, etag)[0] != 304:
                    raise SystemExit(f"127.0.0.1:{port} did not answer 304 to its own ETag")
            print(f"start: {load_figure()}; {len(body)} bytes, ETag {etag}; wrk -t1 "
                  f"-c{args.connections}, {seconds:g} s per run, {repeat} runs each")
            for port, pid in ((ours_port, ours.pid), (bare_port, bare.pid)):  # warm-up
                wrk_run(wrk, port, pid, etag, min(seconds, 1.0), args.connections)
            mine: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            for _ in range(repeat):  # alternating: a drifting load hits both alike
                mine.append(wrk_run(wrk, ours_port, ours.pid, etag, seconds,
                                    args.connections))
                theirs.append(wrk_run(wrk, bare_port, bare.pid, etag, seconds,
                                      args.connections))
            print(line("seriesfeed serve, conditional GET (304)", mine))
            print(line("bare Starlette, the same bytes and ETag (304)", theirs))
            print(f"end: {load_figure()}")
            wrk_max = max(r["wrk_share"] for r in mine + theirs)
            if wrk_max > WRK_LIMIT:
                print(f"ratio seriesfeed/bare: not reported: wrk used {wrk_max:.0%} of a core "
                      f"(more than {WRK_LIMIT:.0%}), so the client may be the limit")
            else:
                cpu_ratio = median([r["cpu_ms"] for r in mine]) / median(
                    [r["cpu_ms"] for r in theirs])
                rate_ratio = median([r["rate"] for r in mine]) / median(
                    [r["rate"] for r in theirs])
                print(f"ratio seriesfeed/bare by server CPU per 304: {cpu_ratio:.2f}x "
                      f"(target <= 1.5x); requests/s {rate_ratio:.0%} of bare's")
        finally:
            stop(ours)
            if bare is not None:
                stop(bare)


if __name__ == "__main__":
    main()
