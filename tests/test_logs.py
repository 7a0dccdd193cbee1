"""The daemon's log lines: human by default, JSON lines with --log-format json."""

from __future__ import annotations

import json
import logging

import pytest

from seriesfeed.logs import setup_logging


def test_json_log_lines_parse_and_scheduler_noise_is_dropped(
        capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json")
    try:
        logging.getLogger("seriesfeed.daemon").info("job %s: %s", "feeds", "2 files written")
        sched = logging.getLogger("apscheduler.scheduler")
        sched.warning('Execution of job "outbox" skipped: maximum number of running '
                      "instances reached (1)")
        sched.warning("Run time of job was missed by 0:00:03")
    finally:
        setup_logging("human")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["message"] for r in records] == ["job feeds: 2 files written",
                                               "Run time of job was missed by 0:00:03"]
    assert records[0]["level"] == "info" and records[0]["logger"] == "seriesfeed.daemon"
    assert records[0]["time"].endswith("+00:00")
