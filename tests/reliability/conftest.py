"""Fixtures shared by the catalogue tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.fault_smtp import FaultServer


@pytest.fixture
def fault(tmp_path: Path) -> Iterator[Callable[..., FaultServer]]:
    """Start scripted SMTP servers (each with its own log under tmp_path); all stop after."""
    servers: list[FaultServer] = []

    def start(**options: object) -> FaultServer:
        server = FaultServer.start(tmp_path / f"smtp-{len(servers)}.jsonl", **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
