"""The benchmark's SMTP sink counts every message once, however the bytes are split, answers
pipelined commands, and reports its CPU time (so the bench can tell when it is the limit)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT


@pytest.fixture
def sink() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield port
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _replies(f: socket.SocketIO | object, n: int) -> list[bytes]:
    return [f.readline() for _ in range(n)]  # type: ignore[attr-defined]


def test_messages_split_anywhere_are_counted_once(sink: int) -> None:
    with socket.create_connection(("127.0.0.1", sink), timeout=5) as s, \
            s.makefile("rb") as f:
        assert f.readline().startswith(b"220")
        s.sendall(b"EHLO me\r\n")
        ehlo = [f.readline()]
        while not ehlo[-1].startswith(b"250 "):
            ehlo.append(f.readline())
        assert any(b"PIPELINING" in line for line in ehlo)
        # pipelined: MAIL, RCPT and DATA in one write
        s.sendall(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n")
        assert [r[:3] for r in _replies(f, 3)] == [b"250", b"250", b"354"]
        # the terminator split over three writes, and a dot-stuffed line before it
        for piece in (b"Subject: x\r\n\r\n..not the end\r\nlast line\r", b"\n.", b"\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        assert f.readline().startswith(b"250 2.0.0")
        # an empty message, then the next transaction at once
        s.sendall(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n")
        assert [r[:3] for r in _replies(f, 3)] == [b"250", b"250", b"354"]
        s.sendall(b".\r\nXCPU\r\nQUIT\r\n")
        queued, cpu, bye = _replies(f, 3)
        assert queued.startswith(b"250 2.0.0") and bye.startswith(b"221")
        _, user, system, count = cpu.split()
        assert float(user) >= 0 and float(system) >= 0 and int(count) == 2
