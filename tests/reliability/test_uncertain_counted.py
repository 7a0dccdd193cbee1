"""A relay that drops every connection after the final dot: the uncertain attempts are
counted (invariant 3) and end failed at max_attempts (invariant 10), not resent forever."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update

from seriesfeed import actions
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.clock import now_utc
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer, Rule


def test_drops_after_dot_for_everyone_do_not_resend_without_end(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    max_attempts = 3
    server = fault(rules={"example.org": [Rule("drop_after_dot")]})  # every message, always
    config = kill.world(make_config, server.port, 10, f"sqlite:///{tmp_path / 'u.sqlite3'}",
                        connections=4,
                        extra={"mail": {"retry_seconds": 0.05, "max_attempts": max_attempts}})
    store = open_store(config.database.url, config.base_dir)
    try:
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
        for _ in range(max_attempts + 5):  # bounded: a few more passes than attempts allowed
            with store.write() as conn:  # whatever waits (backoff or a relay pause) is due now
                conn.execute(update(outbox).where(outbox.c.state == "retry")
                             .values(next_at=now_utc()))
            asyncio.run(drain_outbox(store, config))
    finally:
        store.close()
    copies = Counter(r for d in server.handler.deliveries() for r in d.recipients)
    states = kill.outbox_states(config)
    # each pass above delivered the digest again (the server logged it before dropping)
    assert max(copies.values()) <= max_attempts, (copies.most_common(5), states)
