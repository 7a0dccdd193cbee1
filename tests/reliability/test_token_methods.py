"""S11 and S12 (issue 11, items 7 and 9) on a real uvicorn server: only POST acts on a token
link (HEAD once fell into the POST branch, and a HEAD carrying the one-click body
unsubscribed someone), and a foreign Origin is refused whatever Sec-Fetch-Site says, while
the RFC 8058 one-click POST stays cookie-less and origin-free."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.models import Subscriber
from seriesfeed.store import Store, open_store
from seriesfeed.store import subscribers as sq
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE
from tests.harness.fault_smtp import FaultServer
from tests.harness.web import LiveServer, live

BASE = "https://feeds.example.org"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Site:
    config: Config
    store: Store


@pytest.fixture
def site(make_config: Callable[..., Path], tmp_path: Path) -> Iterator[Site]:
    smtp = FaultServer.start(tmp_path / "smtp.jsonl")
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'm.sqlite3'}"},
        smtp={"host": smtp.host, "port": smtp.port, "security": "none"},
        web={"host": "127.0.0.1", "port": 8080, "base_url": BASE},
        security={"secret_key": "m" * 32}), env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    yield Site(config, store)
    store.close()
    smtp.stop()


def _get(site: Site, email: str) -> Subscriber | None:
    with site.store.read() as conn:
        return sq.get(conn, email=email)


def _csrf(server: LiveServer, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', server.request("GET", path).body)
    assert match
    return match.group(1)


def _state(sub: Subscriber | None) -> tuple[str, str, str] | None:
    return (sub.status.value, sub.language, sub.frequency.value) if sub else None


@pytest.mark.catalogue("S11")
def test_only_post_acts_on_token_links(site: Site, figures: Callable[..., None]) -> None:
    config, store = site.config, site.store
    key = tokens.ensure_secret_key(config)
    pending = subscribers.add_subscriber(store, config, "m-pending@example.org").subscriber
    confirmed = subscribers.add_subscriber(store, config, "m-conf@example.org",
                                             confirmed=True, frequency="weekly").subscriber
    assert pending is not None and confirmed is not None and confirmed.id is not None
    sent_at = datetime.now(UTC)
    assert subscribers.queue_confirmation(store, config, pending, sent_at)
    links = {
        "confirm": (tokens.confirm_link(config, key, pending.id, sent_at), pending.email),
        "unsubscribe": (tokens.unsubscribe_link(config, key, confirmed.id),
                        confirmed.email),
    }
    # preferences of a reader still subscribed (the unsubscribe above ends m-conf's, and
    # an unsubscribed address has no preferences to change)
    reader = subscribers.add_subscriber(store, config, "m-prefs@example.org",
                                        confirmed=True, frequency="weekly").subscriber
    assert reader is not None and reader.id is not None
    links["preferences"] = (tokens.preferences_link(config, key, reader.id), reader.email)
    left = subscribers.add_subscriber(store, config, "m-left@example.org",
                                      confirmed=True).subscriber
    assert left is not None and left.id is not None
    subscribers.unsubscribe(store, config, tokens.unsubscribe_link(
        config, key, left.id).rsplit("/", 1)[-1])
    undo = subscribers.undo_url(store, config, left)
    assert undo is not None
    links["undo"] = (undo, left.email)  # the undo of an unsubscribe: its POST restores
    answers: dict[str, int] = {}
    with live(create_app(config, store)) as server:
        for name, (link, email) in links.items():
            path = link.removeprefix(BASE)
            before = _state(_get(site, email))
            # a body that would act if it were POSTed: a valid CSRF token, the one-click
            # field and new preferences
            body = (f"csrf={_csrf(server, path)}&List-Unsubscribe=One-Click"
                    "&language=es&frequency=daily").encode()
            for method in ("GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"):
                reply = server.request(method, path, body=body, headers=FORM)
                expected = 200 if method in ("GET", "HEAD") else 405
                assert reply.status == expected, (name, method, reply.status)
                assert _state(_get(site, email)) == before, (name, method)
                answers[f"{name} {method}"] = reply.status
            # the same body POSTed does act: the methods above were refused for their method
            assert server.request("POST", path, body=body, headers=FORM).status == 200
            assert _state(_get(site, email)) != before, name
        # the subscribe form too: HEAD with a form body shows the form, subscribes nobody
        form = b"email=m-head%40example.org&language=en&frequency=daily"
        assert server.request("HEAD", "/subscribe", body=form, headers=FORM).status == 200
        assert server.request("PUT", "/subscribe", body=form, headers=FORM).status == 405
        assert _get(site, "m-head@example.org") is None
    assert _state(_get(site, pending.email)) == ("confirmed", "en", "weekly")
    figures(**{"requests by other methods": len(answers), "state changes": 0,
               "GET/HEAD 200": sum(1 for v in answers.values() if v == 200),
               "405": sum(1 for v in answers.values() if v == 405)})


@pytest.mark.catalogue("S12")
def test_a_foreign_origin_is_always_refused(site: Site, figures: Callable[..., None]) -> None:
    config, store = site.config, site.store
    key = tokens.ensure_secret_key(config)
    sub = subscribers.add_subscriber(store, config, "o-conf@example.org", confirmed=True,
                                       frequency="weekly").subscriber
    assert sub is not None and sub.id is not None
    prefs = tokens.preferences_link(config, key, sub.id).removeprefix(BASE)
    unsub = tokens.unsubscribe_link(config, key, sub.id).removeprefix(BASE)
    refused = [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://other.example.org", "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "none"},
        {"Origin": "http://feeds.example.org"},  # not our scheme
        {"Origin": "https://feeds.example.org:444"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
    ]
    allowed = [{"Origin": BASE}, {"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
               # a no-referrer page (ours) makes the browser send Origin: null
               {"Origin": "null", "Sec-Fetch-Site": "same-origin"}, {}]
    blocked = 0
    with live(create_app(config, store)) as server:
        for i, headers in enumerate(refused):
            email = f"o-{i}@example.org"
            reply = server.request("POST", "/subscribe", headers=headers, form={
                "email": email, "language": "en", "frequency": "daily"},
                source=f"127.0.6.{2 + i}")
            assert reply.status == 403, (headers, reply.status)
            assert _get(site, email) is None
            csrf = _csrf(server, prefs)
            reply = server.request("POST", prefs, headers=headers, form={
                "csrf": csrf, "language": "es", "frequency": "daily"})
            assert reply.status == 403, (headers, reply.status)
            blocked += 2
        for i, headers in enumerate(allowed):
            email = f"o-ok-{i}@example.org"
            reply = server.request("POST", "/subscribe", headers=headers, form={
                "email": email, "language": "en", "frequency": "daily"},
                source=f"127.0.7.{2 + i}")
            assert reply.status == 200, (headers, reply.status)
            assert _get(site, email) is not None
        assert _state(_get(site, sub.email)) == ("confirmed", "en", "weekly")
        # RFC 8058: a mail provider's server posts the one-click body; whatever Origin it
        # sends (or none), no cookie and no CSRF are needed
        one_click = server.request("POST", unsub, body=b"List-Unsubscribe=One-Click",
                                   headers={**FORM, "Origin": "https://mail.example.net",
                                            "Sec-Fetch-Site": "cross-site"})
        assert one_click.status == 200
    assert _state(_get(site, sub.email)) == ("unsubscribed", "en", "weekly")
    figures(**{"foreign-origin posts": blocked, "refused (403)": blocked,
               "own-origin posts accepted": len(allowed), "one-click with foreign Origin": 200})
