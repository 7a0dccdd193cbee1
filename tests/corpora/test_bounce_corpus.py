"""Real bounce reports written by others: flufl.bounce 6.0.0's 117 samples (tests/data of its
sdist), with the addresses its own tests expect of each (tables read from its test source with
``ast``), through the path `seriesfeed bounces process` takes, on a store holding an outbox row
for each expected address. Each sample is delivered to its row's VERP address, as the local MTA
delivers a report (a ``Delivered-To`` line on top)."""

from __future__ import annotations

import ast
import logging
import mailbox
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from seriesfeed import tokens
from seriesfeed.actions import bounces
from seriesfeed.config import Config, load_config
from seriesfeed.mailsource import could_be_report, parse_bounded
from seriesfeed.store import Store, open_store
from seriesfeed.store.tables import outbox, subscribers
from tests.harness.corpora import corpus_root

# Where our verdict differs from flufl.bounce's table, and why ours is right:
# file -> (the addresses we read, hard or soft)
DISAGREEMENTS: dict[str, tuple[frozenset[str], str]] = {
    # An X.400 gateway's DSN: "Action: failed", "Status: 4.4.7", Maximum-Time-Expired. The
    # message gave up after a temporary condition (a queue timeout): the address is not known
    # to be bad, so it is counted transient, never a hard bounce (invariant 11: only a 5xx).
    # flufl.bounce counts every "failed" as permanent whatever its status.
    "dsn_02.txt": (frozenset({"zzzzz@example.uk"}), "soft"),
    # flufl.bounce's table lists this file only for its SimpleMatch detector, which finds
    # nothing; the message is an RFC 3464 report whose fields say "Action: failed",
    # "Status: 5.0.0" for david...@gmail.com, as flufl.bounce's own DSN detector (first in
    # its pipeline) reports too. The fields decide: a permanent failure.
    "simple_42.txt": (frozenset({"david...@gmail.com"}), "hard"),
}


def _tables(tests: Path) -> dict[str, list[tuple[frozenset[str], bool]]]:
    """file -> [(expected addresses, temporary?)] from every (file, addresses[, ...,
    is_temporary]) tuple literal in the sdist's tests/test_*.py."""
    found: dict[str, list[tuple[frozenset[str], bool]]] = {}
    for source in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Tuple):
                continue
            try:
                value = ast.literal_eval(node)
            except ValueError:
                continue
            files = [v for v in value if isinstance(v, str) and v.endswith(".txt")]
            sets = [v for v in value if isinstance(v, list | set | frozenset)]
            if len(files) == 1 and len(sets) == 1:
                addresses = frozenset(a.decode() for a in sets[0])
                found.setdefault(files[0], []).append((addresses, value[-1] is True))
    return found


def _expected(name: str, rows: list[tuple[frozenset[str], bool]]) -> tuple[frozenset[str], str]:
    if name in DISAGREEMENTS:
        return DISAGREEMENTS[name]
    # a file listed for several detectors: the pipeline stops at the first that finds any
    addresses = frozenset().union(*(a for a, _ in rows)) if rows else frozenset()
    temporary = any(t for a, t in rows if a)
    return addresses, "soft" if temporary else "hard"


def _add_row(store: Store, address: str, n: int) -> int:
    now = datetime.now(UTC)
    with store.write() as conn:
        sid = conn.execute(select(subscribers.c.id).where(
            subscribers.c.email_key == address.lower())).scalar()
        if sid is None:
            sid = conn.execute(insert(subscribers).values(
                email=address, email_key=address.lower(), language="en", frequency="weekly",
                status="confirmed", created_at=now, last_seq=0, hard_bounces=0,
                soft_bounces=0)).inserted_primary_key[0]
        return int(conn.execute(insert(outbox).values(
            kind="digest", digest_id=None, subscriber_id=sid, recipient=address,
            message_id=f"<corpus-{n}@example.org>", state="sent", attempts=1, uncertain=False,
            created_at=now, sent_at=now, operator_retries=0)).inserted_primary_key[0])


def _deliver(box: Path, n: int, data: bytes) -> None:
    """Into the Maildir as a local MTA delivers: written in tmp/, then renamed into new/.
    (``mailbox.Maildir.add`` fsyncs each message: on a disk shared with a busy suite, over a
    minute for these ~140, and nothing here needs them to survive a power cut.)"""
    name = f"{n:04d}.corpus.localhost"
    (box / "tmp" / name).write_bytes(data)
    (box / "tmp" / name).rename(box / "new" / name)


def test_every_real_bounce_yields_its_addresses_and_verdict_and_none_raises(
        make_config: Callable[..., Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    root = corpus_root("flufl.bounce")
    tables = _tables(root / "tests")
    samples = sorted((root / "tests" / "data").glob("*.txt"))
    assert len(samples) == 117 and len(tables) >= 110, (len(samples), len(tables))
    config: Config = load_config(make_config(
        database={"url": "sqlite:///store.sqlite3"},
        mail={"from": "digest@example.org", "bounce_address": "bounces@example.org",
              "bounce_limit": 1000},
        security={"secret_key": "c" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    key = tokens.ensure_secret_key(config)
    mailbox.Maildir(tmp_path / "incoming")  # tmp/, new/, cur/
    problems: list[str] = []
    rows: list[tuple[str, int, str | None]] = []  # (sample, outbox row, expected bounce)
    try:
        for sample in samples:
            data = sample.read_bytes()
            addresses, kind = _expected(sample.name, tables.get(sample.name, []))
            if addresses and not could_be_report(data[:65536]):
                problems.append(f"{sample.name}: passed over by the header check")
            read = {f.address for f in bounces.failures_of(parse_bounded(data, sample.name))}
            if read != addresses:
                problems.append(f"{sample.name}: read {sorted(read)}, expected {sorted(addresses)}")
            for address in sorted(addresses) or [f"decoy-{len(rows)}@corpus.invalid"]:
                row = _add_row(store, address, len(rows))
                rows.append((sample.name, row, kind if addresses else None))
                verp = bounces.envelope_sender(config, key, row)
                _deliver(tmp_path / "incoming", len(rows),
                         f"Delivered-To: {verp}\n".encode() + data)
        with caplog.at_level(logging.INFO, logger="seriesfeed.bounces"):
            run = bounces.process(store, config, tmp_path / "incoming")
        with store.read() as conn:
            marks = dict(conn.execute(select(outbox.c.id, outbox.c.bounce)).all())
    finally:
        store.close()
    for name, row, expected in rows:
        if marks[row] != expected:
            problems.append(f"{name}: outbox row marked {marks[row]}, expected {expected}")
    assert run.unreadable == 0 and run.messages == len(rows), str(run)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], "\n".join(problems)
    hard = sum(1 for _, _, e in rows if e == "hard")
    soft = sum(1 for _, _, e in rows if e == "soft")
    assert (run.hard, run.soft) == (hard, soft), str(run)
    print(f"bounce corpus: {len(samples)} samples, {len(rows)} reports delivered, {hard} hard, "
          f"{soft} transient, {len(rows) - hard - soft} naming no one; "
          f"{len(DISAGREEMENTS)} disagreements with flufl.bounce's tables")
