"""Manage without a mail link: /{lang}/manage/ answers every address the same (status and
body, invariant S2) and mails a preferences link only to a confirmed subscriber, at most
once a day per address; a cross-site post changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import ConfigFactory
from tests.smtp_server import SmtpServer

ORIGIN = {"Origin": "https://feeds.example.org"}


@pytest.fixture
def site(make_config: ConfigFactory, database_url: str,
         smtp_server: SmtpServer) -> Iterator[tuple[Config, Store, TestClient]]:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "m" * 32})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    subscribers.add_subscriber(store, config, "known@example.org", language="es",
                               confirmed=True)
    subscribers.add_subscriber(store, config, "waiting@example.org")  # pending
    yield config, store, TestClient(create_app(config, store))
    store.close()


def _body(text: str) -> str:
    return re.sub(r'name="csrf" value="[^"]*"', "", text)


def test_the_manage_page_answers_every_address_alike_and_mails_only_a_subscriber(
        site: tuple[Config, Store, TestClient], smtp_server: SmtpServer) -> None:
    _, _, client = site
    form = client.get("/en/manage/")
    assert form.status_code == 200 and 'name="email"' in form.text
    answers = [client.post("/en/manage/", data={"email": address}, headers=ORIGIN)
               for address in ("known@example.org", "nobody@example.org",
                               "waiting@example.org", "not an address")]
    assert {a.status_code for a in answers} == {200}
    assert len({_body(a.text) for a in answers}) == 1
    (mail,) = [m.message for m in smtp_server.recorder.messages]
    assert str(mail["To"]) == "known@example.org"
    assert str(mail["Content-Language"]) == "es"  # the subscriber's language
    text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert "https://feeds.example.org/preferences/" in text
    # asked again the same day: the same answer, no second mail to that address
    again = client.post("/en/manage/", data={"email": "KNOWN@example.org"}, headers=ORIGIN)
    assert _body(again.text) == _body(answers[0].text)
    assert len(smtp_server.recorder.messages) == 1


def test_a_cross_site_post_to_the_manage_page_sends_nothing(
        site: tuple[Config, Store, TestClient], smtp_server: SmtpServer) -> None:
    _, _, client = site
    forged = client.post("/en/manage/", data={"email": "known@example.org"},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert smtp_server.recorder.messages == []
    assert client.get("/xx/manage/").status_code == 404
