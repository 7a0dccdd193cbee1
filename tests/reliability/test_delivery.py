"""Delivery survives what real lists contain and what real relays do (catalogue F14-F16).

F14 one internationalised address among 400; F15 a misconfigured relay (wrong password,
a refused MAIL FROM, the same 552 for everyone) over three digests, then fixed; F16 a relay
slower than the lease, on SQLite and PostgreSQL. The fault server's fsynced log decides
what was delivered."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from seriesfeed import actions
from seriesfeed.actions import delivery
from seriesfeed.actions.delivery import drain_outbox
from seriesfeed.config import Config, load_config
from seriesfeed.mailer import make_transport
from seriesfeed.models import Entry, Frequency
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox, subscribers
from tests.harness import kill
from tests.harness.fault_smtp import FaultServer, Rule
from tests.harness.procs import Processes

FAST = {"mail": {"retry_seconds": 0.05, "max_attempts": 8}}
SLUG = "reflections-on-the-iso-crisis"


def _new_entry(config: Config, n: int) -> None:
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.add_entry(store, config, Entry(series=SLUG, language="en",
                                               title=f"Another article {n}", summary="More.",
                                               published=datetime.now(UTC)))
    finally:
        store.close()


def _rows(config: Config) -> list[dict[str, object]]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(outbox.c.recipient, outbox.c.state, outbox.c.attempts,
                       outbox.c.last_error, outbox.c.digest_id).order_by(outbox.c.id))]
    finally:
        store.close()


def _subscriber_states(config: Config) -> dict[str, tuple[str, int]]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            return {str(e): (str(s), int(h)) for e, s, h in conn.execute(
                select(subscribers.c.email, subscribers.c.status, subscribers.c.hard_bounces))}
    finally:
        store.close()


def _make_due(config: Config) -> None:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.write() as conn:
            conn.execute(update(outbox).where(outbox.c.state == "retry")
                         .values(next_at=datetime(2000, 1, 1, tzinfo=UTC)))
    finally:
        store.close()


def _cli(config: Config, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    assert config.path is not None
    proc = subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


# -- F14: one internationalised address among 400 --------------------------------------

@pytest.mark.catalogue("F14")
@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_one_internationalised_address_among_400(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], smtputf8: bool) -> None:
    server = fault(no_smtputf8=not smtputf8, strict=True)
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'i18n.sqlite3'}",
                        extra=FAST)
    people = [f"p{i}@example.org" for i in range(400)]
    people.insert(49, "josé@example.org")  # 50th, as found from outside
    people.append("ana@exämple.org")  # an IDN domain: stored as A-labels, plain SMTP
    csv = tmp_path / "list.csv"
    csv.write_text("email,frequency,status\n" + "".join(f"{p},daily,confirmed\n"
                                                      for p in people), "utf-8")
    code, out, err = _cli(config, "subscribers", "import", str(csv))
    assert code == 0, err
    stored = set(_subscriber_states(config))
    assert "ana@xn--exmple-cua.org" in stored and "josé@example.org" in stored
    _new_entry(config, 1)
    code, out, err = _cli(config, "digest", "send", "--frequency", "daily")
    assert code == 0, err
    assert "Traceback" not in err
    assert "402 messages queued" in out, out
    assert f"{402 if smtputf8 else 401} sent" in out, out
    rows = {str(r["recipient"]): r for r in _rows(config)}
    delivered = {r for d in server.handler.deliveries() for r in d.recipients}
    plain = {p for p in people if p != "josé@example.org"} - {"ana@exämple.org"} | \
        {"ana@xn--exmple-cua.org"}
    assert plain <= delivered
    jose = rows["josé@example.org"]
    if smtputf8:
        assert "josé@example.org" in delivered and jose["state"] == "sent"
        message = next(m for m in server.handler.messages if "josé@example.org" in m.recipients)
        assert "josé@example.org" in server.parsed(message.data)["To"]
    else:
        assert "josé@example.org" not in delivered
        assert jose["state"] == "failed" and "SMTPUTF8" in str(jose["last_error"])
        # failed alone: not counted as a bounce
        assert _subscriber_states(config)["josé@example.org"] == ("confirmed", 0)
    # nothing left for a later drain: no row stuck in sending or reclaimed forever
    assert {str(r["state"]) for r in rows.values()} <= {"sent", "failed"}
    figures(**{"case": "SMTPUTF8 offered" if smtputf8 else "SMTPUTF8 not offered",
               "recipients": len(people), "delivered": len(delivered),
               "failed": sum(1 for r in rows.values() if r["state"] == "failed")})


@pytest.mark.catalogue("F14")
@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "no-smtputf8"])
def test_an_accented_address_with_a_display_name_is_that_rows_alone(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        smtputf8: bool) -> None:
    """Found from outside: formataddr raised UnicodeEncodeError on 'José <josé@...>', the
    drain took it for a template error and paused the relay for all 400 others."""
    server = fault(no_smtputf8=not smtputf8, strict=True)
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'n.sqlite3'}",
                        extra=FAST)
    people = [(f"p{i}@example.org", f"Person {i}") for i in range(400)]
    people.insert(49, ("josé@example.org", "José"))
    csv = tmp_path / "list.csv"
    csv.write_text("email,name,frequency,status\n" + "".join(
        f"{e},{n},daily,confirmed\n" for e, n in people), "utf-8")
    code, out, err = _cli(config, "subscribers", "import", str(csv))
    assert code == 0, err
    _new_entry(config, 1)
    code, out, err = _cli(config, "digest", "send", "--frequency", "daily")
    assert code == 0 and "Traceback" not in err, err
    assert "paused" not in out, out
    delivered = {r for d in server.handler.deliveries() for r in d.recipients}
    assert {e for e, _ in people if e.isascii()} <= delivered
    jose = {str(r["recipient"]): r for r in _rows(config)}["josé@example.org"]
    if smtputf8:
        assert jose["state"] == "sent" and "josé@example.org" in delivered
        message = next(m for m in server.handler.messages if "josé@example.org" in m.recipients)
        # RFC 6532 headers are UTF-8: read as text, not as bytes (surrogate escapes)
        to = email.message_from_string(message.data.decode("utf-8"),
                                       policy=email.policy.default)["To"]
        assert to.addresses[0].addr_spec == "josé@example.org"
        assert to.addresses[0].display_name == "José"
    else:
        assert "josé@example.org" not in delivered
        assert jose["state"] == "failed" and "SMTPUTF8" in str(jose["last_error"])
        assert _subscriber_states(config)["josé@example.org"] == ("confirmed", 0)


class _Exploding:
    """A transport that works, except that one recipient makes it raise a bug's exception
    (a stand-in for any unforeseen failure inside a send)."""

    def __init__(self, inner: object, bad: str) -> None:
        self.inner, self.bad = inner, bad

    async def send(self, message: bytes, *, sender: str, recipients: Sequence[str]) -> str:
        if self.bad in recipients:
            raise RuntimeError("unexpected failure inside the transport")
        return await self.inner.send(message, sender=sender,  # type: ignore[attr-defined]
                                     recipients=recipients)

    async def aclose(self) -> None:
        await self.inner.aclose()  # type: ignore[attr-defined]


@pytest.mark.catalogue("F14")
def test_any_exception_in_one_row_is_that_rows_and_ends_failed_at_max_attempts(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    server = fault()
    config = kill.world(make_config, server.port, 60, f"sqlite:///{tmp_path / 'x.sqlite3'}",
                        extra={"mail": {"retry_seconds": 0.01, "max_attempts": 3}})
    store = open_store(config.database.url, config.base_dir)
    try:
        async def run() -> list[delivery.DrainReport]:
            reports = []
            transport = _Exploding(make_transport(config), "r7@example.org")
            await actions.send_digests(store, config, frequency=Frequency.DAILY,
                                       scheduled=False, transport=transport)  # type: ignore[arg-type]
            try:
                for _ in range(6):
                    _make_due(config)
                    reports.append(await drain_outbox(
                        store, config, transport=transport))  # type: ignore[arg-type]
            finally:
                await transport.aclose()
            return reports

        asyncio.run(run())
        rows = {str(r["recipient"]): r for r in _rows(config)}
        assert rows["r7@example.org"]["state"] == "failed"
        assert rows["r7@example.org"]["attempts"] == 3
        assert "RuntimeError" in str(rows["r7@example.org"]["last_error"])
        assert sum(1 for r in rows.values() if r["state"] == "sent") == 59
        # a row found due with its attempts used up (a crash loop elsewhere) ends failed
        with store.write() as conn:
            conn.execute(update(outbox).where(outbox.c.recipient == "r8@example.org").values(
                state="sending", attempts=12, lease_until=datetime(2000, 1, 1, tzinfo=UTC)))
        asyncio.run(drain_outbox(store, config))
        assert {str(r["recipient"]): r for r in _rows(config)}["r8@example.org"]["state"] == \
            "failed"
    finally:
        store.close()
    figures(**{"rows": 60, "sent": 59, "failed (the exploding one)": 1, "attempts": 3})


# -- F15: a misconfigured relay bounces nobody ------------------------------------------

MISCONFIGURED = {
    "wrong password (535 at AUTH)": ({"password": "right"}, {"username": "sf",
                                                               "password": "wrong"}),
    "530 at MAIL FROM": ({"mail_reply": "530 5.7.0 Authentication required"}, {}),
    "552 for every message": ({"rules": {"example.org": [
        Rule("data", "552 5.3.4 Message size exceeds fixed maximum message size")]}}, {}),
}


@pytest.mark.catalogue("F15")
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize(("case", "backend"), [
    *((case, "sqlite") for case in MISCONFIGURED),
    pytest.param("530 at MAIL FROM", "postgresql", marks=pytest.mark.postgres)])
def test_misconfigured_relay_bounces_nobody_and_delivers_all_once_fixed(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], case: str, backend: str,
        request: pytest.FixtureRequest) -> None:
    server_options, smtp_options = MISCONFIGURED[case]
    n = 50
    server = fault(**server_options)
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else \
        f"sqlite:///{tmp_path / 'm.sqlite3'}"
    config = kill.world(make_config, server.port, n, url, extra=FAST)
    wrong = {f"SERIESFEED_SMTP_{k.upper()}": v for k, v in smtp_options.items()}
    code, out, err = _cli(config, "digest", "send", "--frequency", "daily", env=wrong)
    assert code == 0 and "Traceback" not in err, err
    assert "paused, nothing counted against subscribers" in out, out
    misconfigured = load_config(config.path, env=wrong)
    store = open_store(config.database.url, config.base_dir)
    try:
        for digest in range(3):
            if digest:
                _new_entry(config, digest)
                summary = asyncio.run(actions.send_digests(
                    store, misconfigured, frequency=Frequency.DAILY, scheduled=False))
                assert "paused" in summary, summary
            _make_due(config)  # and the retries come due: still refused, still nobody's fault
            asyncio.run(drain_outbox(store, misconfigured))
    finally:
        store.close()
    states = _subscriber_states(config)
    bounced = sum(1 for s, _ in states.values() if s == "bounced")
    counted = sum(h for _, h in states.values())
    rows = _rows(config)
    assert bounced == 0 and counted == 0, states
    assert {str(r["state"]) for r in rows} <= {"retry", "queued"}, rows[:3]
    assert len({r["digest_id"] for r in rows}) == 3 and len(rows) == 3 * n
    assert all(int(str(r["attempts"])) == 0 for r in rows)  # sender-side: never counted
    assert server.handler.deliveries() == []
    # the operator is told why, in `status`
    code, out, err = _cli(config, "status", "--json")
    assert code == 0 and "not counted against the subscriber" in json.dumps(json.loads(out))
    # fix the relay: every digest reaches every subscriber once
    server.handler.mail_reply = None
    server.handler.rules.clear()
    _make_due(config)
    code, out, err = _cli(config, "digest", "send", "--frequency", "daily")
    assert code == 0, err
    got = [r for d in server.handler.deliveries() for r in d.recipients]
    assert len(got) == 3 * n and set(got) == kill.recipients(n)
    assert {r["state"] for r in _rows(config)} == {"sent"}
    figures(**{"case": case, "backend": backend, "subscribers": n, "digests": 3,
               "bounced after three digests": bounced, "delivered after the fix": len(got)})


def test_a_bounce_mark_needs_bounces_on_two_digests(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    server = fault(rules={"gone.test": [Rule("rcpt", "550 5.1.1 <u@gone.test> no such user")]})
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'b.sqlite3'}",
                        addresses=["u@gone.test", *(f"r{i}@example.org" for i in range(5))],
                        extra={"mail": {"bounce_limit": 1}})
    code, _, err = _cli(config, "digest", "send", "--frequency", "daily")
    assert code == 0, err
    assert _subscriber_states(config)["u@gone.test"] == ("confirmed", 1)
    _new_entry(config, 1)
    code, _, err = _cli(config, "digest", "send", "--frequency", "daily")
    assert code == 0, err
    assert _subscriber_states(config)["u@gone.test"] == ("bounced", 2)


# -- F16: a relay slower than the lease --------------------------------------------------

@pytest.mark.catalogue("F16")
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_relay_slower_than_the_lease_sends_each_message_once(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None], backend: str, request: pytest.FixtureRequest) -> None:
    """Each message takes 0.5 s over one connection, so a claimed batch outlives its 10 s
    lease, while the daemon's periodic drain keeps trying to claim."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else \
        f"sqlite:///{tmp_path / 'lease.sqlite3'}"
    n = 30
    server = fault(tarpit=0.5)
    config = kill.world(make_config, server.port, n, url, connections=1,
                        extra={"mail": {"lease_seconds": 10, "batch_size": 200}})
    store = open_store(config.database.url, config.base_dir)
    started = time.monotonic()

    async def scenario() -> None:
        sending = asyncio.create_task(actions.send_digests(
            store, config, frequency=Frequency.DAILY, scheduled=False))
        while not sending.done():  # the daemon's periodic drain, every 0.5 s
            await drain_outbox(store, config, lock_wait=0)
            await asyncio.sleep(0.5)
        await sending

    try:
        asyncio.run(scenario())
        if backend == "postgresql":  # a second process sharing the outbox finds nothing
            code, _, err = _cli(config, "digest", "send", "--frequency", "daily")
            assert code == 0, err
        with store.read() as conn:
            states = dict(conn.execute(select(outbox.c.state, func.count())
                                       .group_by(outbox.c.state)).all())
    finally:
        store.close()
    took = time.monotonic() - started
    got = kill.account(server.handler.deliveries(), kill.recipients(n))
    assert took > 10  # the batch outlived its lease
    assert got.lost == 0 and got.duplicates == 0, got
    assert states == {"sent": n}
    figures(**{"backend": backend, "recipients": n, "lease s": 10, "s per message": 0.5,
               "send took s": round(took, 1), "duplicates": got.duplicates, "lost": got.lost})


# -- a confirmation mail goes through the outbox -----------------------------------------

@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("F15")
def test_relay_down_at_subscribe_delays_the_confirmation_never_loses_it(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    from seriesfeed.web import create_app
    from tests.harness.web import live

    server = fault()
    server.stop()  # the relay is down when the visitor subscribes
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'c.sqlite3'}",
                        extra={"web": {"host": "127.0.0.1", "port": 8080,
                                       "base_url": "https://feeds.example.org"},
                               "mail": {"retry_seconds": 0.05}})
    store = open_store(config.database.url, config.base_dir)
    try:
        with live(create_app(config, store)) as web:
            reply = web.request("POST", "/subscribe", form={
                "email": "new@example.org", "language": "en", "frequency": "daily"},
                headers={"Origin": "https://feeds.example.org"})
            assert reply.status == 200 and reply.seconds < 2, reply
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    r["state"] == "retry" for r in _rows(config)):
                time.sleep(0.1)
        rows = _rows(config)
        assert [r["state"] for r in rows] == ["retry"], rows
        assert "not counted against the subscriber" in str(rows[0]["last_error"])
        server.restart()  # the relay is back: the daemon's next outbox pass sends it, once
        _make_due(config)
        asyncio.run(drain_outbox(store, config))
        asyncio.run(drain_outbox(store, config))
    finally:
        store.close()
    got = [r for d in server.handler.deliveries() for r in d.recipients]
    assert got == ["new@example.org"]
    message = server.parsed(server.handler.messages[0].data)
    assert "/confirm/" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert [r["state"] for r in _rows(config)] == ["sent"]
    figures(**{"case": "relay down at subscribe", "confirmations delivered": len(got),
               "second subscribe needed": "no"})


# -- found by attacking the above from outside the suite ----------------------------------

def _send_cli(config: Config) -> tuple[int, str, str]:
    return _cli(config, "digest", "send", "--frequency", "daily")


@pytest.mark.catalogue("F14")
def test_the_first_message_on_a_fresh_connection_may_need_smtputf8(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    server = fault()
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'u.sqlite3'}",
                        addresses=["josé@example.org", "r0@example.org"], connections=1)
    code, _, err = _send_cli(config)
    assert code == 0, err
    assert {str(r["recipient"]): r["state"] for r in _rows(config)} == {
        "josé@example.org": "sent", "r0@example.org": "sent"}


@pytest.mark.catalogue("F15")
def test_unknown_users_in_a_row_fail_once_and_bounce_without_pausing(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    server = fault(rules={"gone.test": [Rule("rcpt", "550 5.1.1 User unknown")]})
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'g.sqlite3'}",
                        addresses=[*(f"u{i}@gone.test" for i in range(6)),
                                   *(f"r{i}@example.org" for i in range(20))],
                        connections=1, extra=FAST)
    code, out, _err = _send_cli(config)
    assert code == 0 and "paused" not in out, out
    rows = {str(r["recipient"]): r for r in _rows(config)}
    assert all(rows[f"u{i}@gone.test"]["state"] == "failed" for i in range(6))
    assert all(rows[f"u{i}@gone.test"]["attempts"] == 1 for i in range(6))
    assert sum(1 for r in rows.values() if r["state"] == "sent") == 20
    assert all(h == 1 for e, (_, h) in _subscriber_states(config).items() if "gone" in e)


@pytest.mark.catalogue("F15")
@pytest.mark.parametrize("reply", [
    "550 5.7.26 Unauthenticated email is not accepted {token} - gsmtp",
    "452 4.3.1 Insufficient system storage"])
def test_the_same_refusal_for_everyone_is_the_relays_even_with_tokens_or_4xx(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        reply: str) -> None:
    import itertools

    server = fault()
    tokens = itertools.count()

    class Varying(Rule):  # the relay quotes a fresh token in every refusal
        @property  # type: ignore[override]
        def reply(self) -> str:
            return reply.format(token=f"t{next(tokens)}x")

        @reply.setter
        def reply(self, value: str) -> None:
            pass

    phase = "data" if reply.startswith("550") else "rcpt"
    server.handler.rules["example.org"] = [Varying(phase)]
    config = kill.world(make_config, server.port, 20, f"sqlite:///{tmp_path / 'v.sqlite3'}",
                        extra={"mail": {"retry_seconds": 0.05, "max_attempts": 2}})
    for _ in range(4):  # several drains: nothing may use up its attempts or bounce
        code, _, err = _send_cli(config)
        assert code == 0, err
        _make_due(config)
    assert {str(r["state"]) for r in _rows(config)} <= {"retry", "queued"}
    assert all(s == ("confirmed", 0) for s in _subscriber_states(config).values())
    server.handler.rules.clear()
    code, _, err = _send_cli(config)
    assert code == 0, err
    assert {str(r["state"]) for r in _rows(config)} == {"sent"}
    assert kill.account(server.handler.deliveries(), kill.recipients(20)).duplicates == 0


def test_a_policy_refusal_for_some_recipients_is_no_bounce(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    server = fault(rules={"far.test": [Rule("rcpt", "554 5.7.1 Relay access denied")]})
    addresses = [a for i in range(10) for a in (f"u{i}@far.test", f"r{i}@example.org")]
    config = kill.world(make_config, server.port, 0, f"sqlite:///{tmp_path / 'p.sqlite3'}",
                        addresses=addresses, extra={"mail": {"bounce_limit": 1}})
    for n in range(3):
        if n:
            _new_entry(config, n)
        code, _, err = _send_cli(config)
        assert code == 0, err
    assert all(s == ("confirmed", 0) for s in _subscriber_states(config).values())


def test_a_bad_dkim_key_is_one_error_line_and_touches_no_row(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer]) -> None:
    key = tmp_path / "dkim.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n")
    server = fault()
    config = kill.world(make_config, server.port, 5, f"sqlite:///{tmp_path / 'k.sqlite3'}",
                        extra={"mail": {"dkim_key": str(key), "dkim_selector": "s",
                                        "dkim_domain": "example.org"}})
    code, _, err = _send_cli(config)
    assert code != 0 and "Traceback" not in err and "mail.dkim_key" in err, err
    assert {str(r["state"]) for r in _rows(config)} <= {"queued"}


def test_a_non_ascii_from_address_is_refused_when_read(make_config: Callable[..., Path]
                                                       ) -> None:
    from seriesfeed.errors import ConfigError

    with pytest.raises(ConfigError, match="ASCII"):
        load_config(make_config(mail={"from": "Boletín <boletín@example.org>"}), env={})
    assert load_config(make_config(mail={"from": "Boletín <boletin@example.org>"}),
                       env={}).mail.from_.startswith("Boletín")


@pytest.mark.catalogue("F16")
def test_a_store_locked_during_a_send_makes_no_duplicate(
        make_config: Callable[..., Path], tmp_path: Path, fault: Callable[..., FaultServer],
        figures: Callable[..., None]) -> None:
    """Another process holds the write lock for longer than SQLite's busy timeout while
    marks are due: sending waits for the marks, nothing is sent twice, nothing is lost."""
    import sqlite3
    import threading

    n = 40
    server = fault(tarpit=0.05)
    path = tmp_path / "lock.sqlite3"
    config = kill.world(make_config, server.port, n, f"sqlite:///{path}", connections=2)
    held_for = 3.0

    def hold() -> None:
        while len(server.handler.deliveries()) < 5:
            time.sleep(0.01)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        time.sleep(held_for)
        db.execute("COMMIT")
        db.close()

    base = open_store(config.database.url, config.base_dir)
    store = base.with_busy_timeout(1.0)  # shorter than the lock: marks must wait for it
    try:
        locker = threading.Thread(target=hold)
        locker.start()
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
        locker.join()
    finally:
        store.close()
        base.close()
    got = kill.account(server.handler.deliveries(), kill.recipients(n))
    assert got.lost == 0 and got.duplicates == 0, got
    assert kill.outbox_states(config) == {"sent": n}
    figures(**{"case": "write lock held past the busy timeout mid-send", "recipients": n,
               "duplicates": got.duplicates, "lost": got.lost})


def test_digest_send_hands_rows_back_on_sigterm(
        make_config: Callable[..., Path], tmp_path: Path,
        fault: Callable[..., FaultServer], procs: Processes) -> None:
    import signal

    server = fault(tarpit=0.5)
    config = kill.world(make_config, server.port, 30, f"sqlite:///{tmp_path / 't.sqlite3'}",
                        connections=1)
    assert config.path is not None
    proc = procs.start([sys.executable, "-m", "seriesfeed", "--config", str(config.path),
                        "digest", "send", "--frequency", "daily"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not server.handler.deliveries() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    states = kill.outbox_states(config)
    assert "sending" not in states and states.get("queued", 0) >= 20, states


def test_a_relay_that_answers_nothing_is_tried_each_minute_one_that_refuses_backs_off(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """The pause's length alone: a relay that answers nothing (or says "not now", 421) is
    only down, so the pause stays retry_seconds however many probes failed; one that
    refuses (535, 530) doubles from retry_seconds up to an hour. The outage itself (relay
    down, then back, every row out within retry_seconds of its return) is
    tests/reliability/test_relay_state.py's F4 test, against the fault server."""
    from seriesfeed.actions import relay

    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'p.sqlite3'}"},
        mail={"retry_seconds": 2}), env={})
    assert relay.pause_for(config, 12, refusal=False).total_seconds() == 2
    assert relay.pause_for(config, 12, refusal=True).total_seconds() == 3600
    assert relay.pause_for(config, 1, refusal=True).total_seconds() == 2
    assert relay.pause_for(config, 2, refusal=True).total_seconds() == 4
