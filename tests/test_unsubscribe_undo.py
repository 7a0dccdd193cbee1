"""A mistaken unsubscribe: its undo (a button, POST only) puts the subscription back as it
was, and asking again on the form gets its confirmation, one more and never unbounded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from starlette.testclient import TestClient

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.clock import now_utc
from seriesfeed.config import Config, load_config
from seriesfeed.models import Subscriber
from seriesfeed.store import Store, open_store
from seriesfeed.store import subscribers as sq
from seriesfeed.store.tables import suppressions
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE
from tests.smtp_server import SmtpServer

SLUG = "reflections-on-the-iso-crisis"
BASE = "https://feeds.example.org"
ORIGIN = {"Origin": BASE}


@pytest.fixture
def parts(make_config: Callable[..., Path], database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Config, Store]]:
    site = make_config(database={"url": database_url},
                       smtp={"host": smtp_server.host, "port": smtp_server.port,
                             "security": "none", "connections": 1},
                       web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
                       security={"secret_key": "u" * 32})
    config = load_config(site, env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    yield config, store
    store.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _stored(store: Store, address: str) -> Subscriber:
    with store.read() as conn:
        sub = sq.get(conn, email=address)
    assert sub is not None
    return sub


def _unsubscribe_by_page(client: TestClient, config: Config, sub: Subscriber) -> str:
    """Unsubscribe with the page's button; the done page's HTML."""
    path = subscribers.unsubscribe_url(config, sub).removeprefix(BASE)
    shown = client.get(path)
    done = client.post(path, data={"csrf": _csrf(shown.text)}, headers=ORIGIN)
    assert done.status_code == 200, done.text
    return done.text


def test_the_undo_puts_the_subscription_back_as_it_was_and_only_its_post_acts(
        parts: tuple[Config, Store]) -> None:
    config, store = parts
    added = subscribers.add_subscriber(store, config, "lectora@example.org", language="es",
                                       frequency="daily", series=(SLUG,), confirmed=True)
    assert added.subscriber is not None and added.subscriber.id is not None
    with store.write() as conn:  # a cursor part-way: the undo must not move it
        sq.update_fields(conn, added.subscriber.id, last_seq=7)
    before = _stored(store, "lectora@example.org")
    client = TestClient(create_app(config, store), base_url=BASE)

    done = _unsubscribe_by_page(client, config, before)
    assert "Te has dado de baja" in done and _stored(store, before.email).status.value == \
        "unsubscribed"
    form = re.search(r'<form method="post" action="https://feeds\.example\.org(/undo/[^"]+)"',
                     done)
    assert form, "the unsubscribe-done page offers no undo button"
    undo = form.group(1)
    assert f'href="{BASE}/undo/' not in done  # a button, never a link a scanner follows

    # link scanners: GET, HEAD and other methods change nothing
    shown = client.get(undo)
    assert shown.status_code == 200 and "Deshacer" in shown.text
    assert client.head(undo).status_code == 200
    assert client.options(undo).status_code == 405
    assert client.post(undo, data={"csrf": "forged"}, headers=ORIGIN).status_code == 403
    assert client.post(undo, data={"csrf": _csrf(shown.text)},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert _stored(store, before.email).status.value == "unsubscribed"
    # another purpose's token is not an undo, and an undo token unsubscribes nobody
    unsub_token = subscribers.unsubscribe_url(config, before).rsplit("/", 1)[-1]
    assert client.get(f"/undo/{unsub_token}").status_code == 400
    assert client.get(f"/unsubscribe/{undo.rsplit('/', 1)[-1]}").status_code == 400

    restored = client.post(undo, data={"csrf": _csrf(done)}, headers=ORIGIN)
    assert restored.status_code == 200 and "Tu suscripción ha vuelto" in restored.text
    after = _stored(store, before.email)
    assert (after.status.value, after.language, after.frequency.value, after.series,
            after.last_seq, after.confirmed_at) == (
        "confirmed", "es", "daily", (SLUG,), 7, before.confirmed_at)
    assert after.unsubscribed_at is None
    # used once: a replay, or the old undo after a second unsubscribe, restores nothing
    assert client.post(undo, data={"csrf": _csrf(done)}, headers=ORIGIN).status_code == 400
    again = _unsubscribe_by_page(client, config, after)
    assert client.post(undo, data={"csrf": _csrf(done)}, headers=ORIGIN).status_code == 400
    assert _stored(store, before.email).status.value == "unsubscribed"
    fresh = re.search(r'action="https://feeds\.example\.org(/undo/[^"]+)"', again)
    assert fresh and fresh.group(1) != undo


def test_an_undo_never_restores_a_suppressed_or_bounced_address(
        parts: tuple[Config, Store]) -> None:
    config, store = parts
    client = TestClient(create_app(config, store), base_url=BASE)
    added = subscribers.add_subscriber(store, config, "gone@example.org", confirmed=True)
    assert added.subscriber is not None and added.subscriber.id is not None
    done = _unsubscribe_by_page(client, config, added.subscriber)
    undo = re.search(r'action="https://feeds\.example\.org(/undo/[^"]+)"', done)
    assert undo
    with store.write() as conn:  # a complaint since: suppressed for good
        conn.execute(insert(suppressions).values(email_hash=sq.email_hash("gone@example.org"),
                                                 reason="complaint", created_at=now_utc()))
    assert client.post(undo.group(1), data={"csrf": _csrf(done)},
                       headers=ORIGIN).status_code == 400
    assert _stored(store, "gone@example.org").status.value == "unsubscribed"

    bounced = subscribers.add_subscriber(store, config, "bounced@example.org", confirmed=True)
    assert bounced.subscriber is not None and bounced.subscriber.id is not None
    with store.write() as conn:
        sq.update_fields(conn, bounced.subscriber.id, status="bounced")
    page = _unsubscribe_by_page(client, config, bounced.subscriber)
    assert "/undo/" not in page  # nothing an undo could put back
    token = tokens.make_token(tokens.ensure_secret_key(config), tokens.Purpose.UNDO,
                              bounced.subscriber.id,
                              bound=_stored(store, "bounced@example.org").unsubscribed_at
                              .isoformat())  # type: ignore[union-attr]
    shown = client.get(f"/undo/{token}")
    assert client.post(f"/undo/{token}", data={"csrf": _csrf(shown.text)},
                       headers=ORIGIN).status_code == 400
    assert _stored(store, "bounced@example.org").status.value == "unsubscribed"


def test_asking_again_after_an_unsubscribe_gets_one_more_confirmation_never_unbounded(
        parts: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = parts
    app = create_app(config, store)
    client = TestClient(app, base_url=BASE)
    form = {"email": "otra@example.org", "language": "en", "frequency": "weekly",
            "website": ""}
    asks = iter(range(41, 60))

    def ask(**change: str) -> None:
        """The form posted from a new client address each time: the per-client limit
        (429) is not what this test is about, the per-target-address one is."""
        bot = TestClient(app, base_url=BASE, client=(f"127.0.0.{next(asks)}", 5000))
        assert bot.post("/subscribe", data={**form, **change},
                        headers=ORIGIN).status_code == 200

    ask()
    first = smtp_server.recorder.wait_for(1)
    assert len(first) == 1
    text = first[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    confirm = re.search(r"https://feeds\.example\.org(/confirm/[A-Za-z0-9_\-.]+)", text)
    assert confirm
    shown = client.get(confirm.group(1))
    assert client.post(confirm.group(1), data={"csrf": _csrf(shown.text)},
                       headers=ORIGIN).status_code == 200
    # confirming through the link also sends the welcome (not a confirmation)
    welcome = smtp_server.recorder.wait_for(2)[1].message
    assert str(welcome["Message-ID"]).startswith("<welcome.")
    _unsubscribe_by_page(client, config, _stored(store, "otra@example.org"))

    # the same day, on the form (the mistaken unsubscribe's other way back)
    ask(language="es", series=SLUG)
    assert len(smtp_server.recorder.wait_for(3)) == 3, "no confirmation after the unsubscribe"
    again = _stored(store, "otra@example.org")
    assert (again.status.value, again.language, again.series) == ("pending", "es", (SLUG,))
    # list-bombing: asking more that day sends nothing more
    for _ in range(3):
        ask()
    assert len(smtp_server.recorder.wait_for(4, timeout=1.0)) == 3
    # each unsubscribe (which takes the address's own signed link) frees one, not more
    _unsubscribe_by_page(client, config, _stored(store, "otra@example.org"))
    for _ in range(2):
        ask()
    assert len(smtp_server.recorder.wait_for(5, timeout=1.0)) == 4


def test_asking_again_after_an_unsubscribe_takes_this_ask_s_series(
        parts: tuple[Config, Store]) -> None:
    """A resubscribe is a fresh consent: the series this form names, not the old ones."""
    config, store = parts
    first = subscribers.add_subscriber(store, config, "again@example.org", confirmed=True)
    assert first.subscriber is not None
    subscribers.unsubscribe_address(store, "again@example.org")
    subscribers.add_subscriber(store, config, "again@example.org", language="es",
                               frequency="daily", series=(SLUG,), source="form:/es/")
    again = _stored(store, "again@example.org")
    assert (again.status.value, again.language, again.frequency.value, again.series) == (
        "pending", "es", "daily", (SLUG,))


def test_an_undo_never_restores_an_address_that_bounced_after_the_unsubscribe(
        parts: tuple[Config, Store]) -> None:
    from sqlalchemy import select

    from seriesfeed.models import OutboxKind
    from seriesfeed.store import ops
    from seriesfeed.store import outbox as oq
    from seriesfeed.store.tables import outbox
    from seriesfeed.store.tables import subscribers as subscriber_rows

    config, store = parts
    client = TestClient(create_app(config, store), base_url=BASE)
    added = subscribers.add_subscriber(store, config, "late@example.org", confirmed=True)
    assert added.subscriber is not None and added.subscriber.id is not None
    sid = added.subscriber.id
    done = _unsubscribe_by_page(client, config, added.subscriber)
    undo = re.search(r'action="https://feeds\.example\.org(/undo/[^"]+)"', done)
    assert undo
    # reports for the digests sent before the unsubscribe come back: the mailbox is gone
    now = now_utc()
    with store.write() as conn:
        for n in range(config.mail.bounce_limit):
            oq.queue(conn, OutboxKind.CONFIRM, sid, "late@example.org", f"<late{n}@x>", now)
        rows = [r for (r,) in conn.execute(select(outbox.c.id).where(
            outbox.c.subscriber_id == sid))]
        for row in rows:
            assert ops.mark_bounce(conn, row, "hard", "550 5.1.1 no such user", now,
                                   bounce_limit=config.mail.bounce_limit).changed
    with store.read() as conn:
        counted = conn.execute(select(subscriber_rows.c.hard_bounces).where(
            subscriber_rows.c.id == sid)).scalar_one()
    assert counted >= config.mail.bounce_limit
    client.post(undo.group(1), data={"csrf": _csrf(done)}, headers=ORIGIN)
    assert _stored(store, "late@example.org").status.value != "confirmed"
