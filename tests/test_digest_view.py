"""View in browser: each digest has one public page per language at an unguessable signed
URL, linked from the top of the mail, the same for every recipient and holding no address
or token; with ``[digests] archive = true`` the language's past digests are listed."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE, ConfigFactory
from tests.smtp_server import SmtpServer

READERS = ("reader.one@example.org", "reader.two@example.org")


@pytest.fixture
def world(make_config: ConfigFactory, database_url: str,
          smtp_server: SmtpServer) -> Iterator[tuple[Config, Store]]:
    path = make_config(
        database={"url": database_url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        web={"host": "127.0.0.1", "port": 8080, "base_url": "https://feeds.example.org"},
        security={"secret_key": "v" * 32})
    config = load_config(path, env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    for address in READERS:
        subscribers.add_subscriber(store, config, address, frequency="daily", confirmed=True)
    actions.add_entry(store, config, Entry(
        series="reflections-on-the-iso-crisis", language="en", title="What comes next",
        summary="A new part.", published=datetime(2026, 12, 1, tzinfo=UTC),
        url="https://socialistworker.org/2026/12/01/what-comes-next/"))
    asyncio.run(actions.send_digests(store, config, scheduled=False))
    yield config, store
    store.close()


def _texts(server: SmtpServer) -> dict[str, str]:
    out = {}
    for m in server.recorder.messages:
        body = m.message.get_body(("plain",))
        assert body is not None
        out[str(m.message["To"])] = str(body.get_content())  # type: ignore[attr-defined]
    return out


def test_the_digest_page_is_one_for_all_and_holds_no_address_or_token(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    texts = _texts(smtp_server)
    assert set(texts) == set(READERS)
    views = {re.search(r"https://feeds\.example\.org(/en/digests/\S+/)", t).group(1)  # type: ignore[union-attr]
             for t in texts.values()}
    assert len(views) == 1  # the same page for every recipient
    (path,) = views
    client = TestClient(create_app(config, store))
    page = client.get(path)
    assert page.status_code == 200
    assert "What comes next" in page.text
    assert page.headers["content-language"] == "en"
    # no address, no personal token, no unfilled marker
    personal = [tok for t in texts.values()
                for tok in re.findall(r"/(?:unsubscribe|preferences)/(\S+)", t)]
    assert len(personal) == 4
    for secret in (*READERS, *personal, "SERIESFEED-"):
        assert secret not in page.text
    assert "preferences and unsubscribe links are in the email" in page.text
    # a forged, altered or other-language token is simply not found
    number = path.split("/")[3].split("-")[0]
    for wrong in (f"/en/digests/{number}-AAAA/", path.replace("/en/", "/es/"),
                  f"/en/digests/{int(number) + 1}-{path.split('-', 1)[1]}"):
        assert client.get(wrong).status_code == 404
    # the archive is off by default
    assert client.get("/en/digests/").status_code == 404


def test_the_archive_lists_past_digests_per_language(
        world: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = world
    config = dataclasses.replace(config, digests=dataclasses.replace(config.digests,
                                                                     archive=True))
    client = TestClient(create_app(config, store))
    english = client.get("/en/digests/")
    assert english.status_code == 200
    (link,) = re.findall(r'href="https://feeds\.example\.org(/en/digests/[^"]+/)"',
                         english.text)
    assert client.get(link).status_code == 200
    spanish = client.get("/es/digests/")
    assert spanish.status_code == 200 and "/es/digests/" not in spanish.text.split("<h1>")[1]
