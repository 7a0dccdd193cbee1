"""The process reaper under every test: what a test starts ends with it, pass or fail."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.harness.procs import Processes, reaping_every_popen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); only a reaped process is gone
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(")")[1].split()[0] != "Z"


def test_a_failing_test_leaves_no_process_and_no_open_pipe() -> None:
    with pytest.raises(AssertionError), reaping_every_popen():
        proc = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        raise AssertionError("the test failed before its own clean-up")
    assert proc.returncode is not None and not _alive(proc.pid)
    assert proc.stdout is not None and proc.stdout.closed
    assert proc.stderr is not None and proc.stderr.closed


def test_the_process_group_goes_with_its_leader() -> None:
    """A daemon's children (a shell's background job here) are killed with it."""
    with pytest.raises(AssertionError), Processes() as procs:
        proc = procs.start(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                           text=True)
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        raise AssertionError("failed")
    deadline = time.monotonic() + 5
    while _alive(child):  # init reaps the orphan shortly after the kill
        assert time.monotonic() < deadline, "the child outlived its group's reaping"
        time.sleep(0.05)
    assert not _alive(proc.pid)
