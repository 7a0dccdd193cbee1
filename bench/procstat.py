"""What the benches measure other processes with: CPU seconds of a running process from
/proc/<pid>/stat (user + system, all its threads), the CPU of a reaped child from wait4's
rusage, the load average, medians, and a free 127.0.0.1 port.

CPU time of the separate processes, not wall time, is the figure a shared machine cannot
inflate much: another engineer's tests slow a run's wall clock but barely its CPU per unit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process so far (every thread; 1/CLK_TCK steps)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        # the command name may hold spaces: the fields after its closing parenthesis
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def peak_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Finished:
    returncode: int
    cpu: float  # user + system seconds of the child (and its reaped children)
    wall: float
    peak_mb: float
    stdout: str


def run_wait4(argv: list[str], timeout: float, env: dict[str, str] | None = None,
              cwd: str | None = None) -> Finished:
    """Run a command to its end and reap it with wait4: its own CPU and peak memory
    (ru_maxrss), exactly that child's. Output goes to a file, read after."""
    import tempfile

    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Finished(proc.returncode, usage.ru_utime + usage.ru_stime, wall,
                    usage.ru_maxrss / 1024, text)


def load_figure() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {seconds:.0f} s")
