"""No dead ends on the subscription pages: every page a reader can reach from a mail says
where they stand and links on (to the series, to their preferences, to subscribe again),
in their language, and every form page offers the same page in the other languages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from starlette.testclient import TestClient

from seriesfeed import tokens
from seriesfeed.actions import subscribers
from seriesfeed.clock import now_utc
from seriesfeed.config import Config
from seriesfeed.models import Subscriber
from seriesfeed.store import Store
from seriesfeed.store import subscribers as sq
from seriesfeed.web import create_app
from tests.bilingual import SLUG, SPANISH_TITLE, seed_like_quick_start
from tests.smtp_server import SmtpServer

SPANISH_MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
                  "septiembre", "octubre", "noviembre", "diciembre"]


def _client(config: Config, store: Store) -> TestClient:
    return TestClient(create_app(config, store), base_url=config.public_url)


def _pending(store: Store, config: Config, email: str = "pablo0@example.org",
             language: str = "es") -> tuple[Subscriber, str]:
    sub = subscribers.add_subscriber(store, config, email, language=language).subscriber
    assert sub is not None and sub.id is not None
    subscribers.queue_confirmation(store, config, sub, now_utc())
    with store.read() as conn:
        sent = sq.confirm_sent_at(conn, sub.id)
    assert sent is not None
    return sub, tokens.confirm_link(config, tokens.ensure_secret_key(config), sub.id, sent)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _post(client: TestClient, link: str, csrf: str, **fields: str) -> str:
    reply = client.post(link, data={"csrf": csrf, **fields},
                        headers={"Origin": client.base_url.__str__().rstrip("/")})
    assert reply.status_code == 200, reply.text[-600:]
    return reply.text


def _main(html: str) -> str:
    return html.split('<main id="main">', 1)[1].split("</main>", 1)[0]


def test_a_used_confirm_link_says_already_confirmed_and_links_on(store: Store,
                                                                 config: Config) -> None:
    seed_like_quick_start(store, config)
    client = _client(config, store)
    _, link = _pending(store, config)
    _post(client, link, _csrf(client.get(link).text))
    again = client.get(link)
    assert again.status_code == 200
    main = _main(again.text)
    assert "Ya habías confirmado esta suscripción" in main
    assert "<form" not in main and "Confirmar mi suscripción" not in main
    assert f'href="{config.public_url}/es/{SLUG}/"' in main
    assert f'href="{config.public_url}/preferences/' in main


def test_preferences_after_unsubscribing_say_so_and_offer_to_subscribe_again(
        store: Store, config: Config) -> None:
    client = _client(config, store)
    reader = subscribers.add_subscriber(store, config, "rosa@example.org", language="es",
                                        confirmed=True).subscriber
    assert reader is not None and reader.id is not None
    key = tokens.ensure_secret_key(config)
    prefs = tokens.preferences_link(config, key, reader.id)
    old_tab = _csrf(client.get(prefs).text)  # preferences opened before unsubscribing
    leave = tokens.unsubscribe_link(config, key, reader.id)
    _post(client, leave, _csrf(client.get(leave).text))
    page = _main(client.get(prefs).text)
    assert "Te has dado de baja" in page and "Tus preferencias" not in page
    assert f'action="{config.public_url}/undo/' in page and "Suscribirme de nuevo" in page
    # a preferences form sent after unsubscribing (an old tab) changes nothing, and says so
    done = _main(_post(client, prefs, old_tab, language="en", frequency="daily"))
    assert "guardado" not in done and "Te has dado de baja" in done
    with store.read() as conn:
        after = sq.get(conn, id=reader.id)
    assert after is not None and after.language == "es" and after.frequency.value == "weekly"
    # the offer works: its button brings the subscription back
    undo = re.search(r'action="([^"]+/undo/[^"]+)"', page)
    assert undo
    back = _main(_post(client, undo.group(1), _csrf(page)))
    assert "Tu suscripción ha vuelto" in back
    with store.read() as conn:
        again = sq.get(conn, id=reader.id)
    assert again is not None and again.status.value == "confirmed"


def _next_monday_seven(zone_now: datetime) -> datetime:
    day = zone_now.replace(hour=7, minute=0, second=0, microsecond=0)
    day += timedelta(days=(7 - day.weekday()) % 7)
    return day if day > zone_now else day + timedelta(days=7)


def test_the_confirmed_page_links_to_preferences_and_says_when_the_first_mail_comes(
        store: Store, config: Config) -> None:
    client = _client(config, store)
    _, link = _pending(store, config)  # weekly, the shipped "0 7 * * mon" in New York
    done = _main(_post(client, link, _csrf(client.get(link).text)))
    assert f'href="{config.public_url}/preferences/' in done
    assert f'href="{config.public_url}/unsubscribe/' in done
    when = _next_monday_seven(now_utc().astimezone(config.zone))
    expected = f"lunes, {when.day} de {SPANISH_MONTHS[when.month - 1]} de {when.year}, 7:00"
    assert expected in done, done
    assert "Nueva York" in done


def test_every_form_page_has_the_language_switch(store: Store, config: Config) -> None:
    client = _client(config, store)
    page = client.get("/subscribe?lang=es").text
    assert re.search(r'<a href="[^"]*/subscribe\?lang=en" hreflang="en" lang="en">English</a>',
                     page), page[-800:]
    _, link = _pending(store, config)
    confirm = client.get(link).text
    assert f'<a href="{link}?lang=en" hreflang="en" lang="en">English</a>' in confirm
    english = client.get(link + "?lang=en")
    assert english.headers["content-language"] == "en"
    assert "<h1>Confirm your subscription</h1>" in english.text
    # the form keeps the chosen language, so its answer is in it too
    assert f'action="{link}?lang=en"' in english.text
    reader = subscribers.add_subscriber(store, config, "ana@example.org", language="es",
                                        confirmed=True).subscriber
    assert reader is not None and reader.id is not None
    key = tokens.ensure_secret_key(config)
    for made in (tokens.preferences_link, tokens.unsubscribe_link):
        target = made(config, key, reader.id)
        assert f'href="{target}?lang=en" hreflang="en"' in client.get(target).text


def test_the_confirmation_mail_names_the_series_and_who_asked_when(
        store: Store, config: Config, smtp_server: SmtpServer,
        make_config) -> None:  # type: ignore[no-untyped-def]
    from seriesfeed.config import load_config

    config = load_config(make_config(
        database={"url": config.database.url},
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"}),
        env={})
    seed_like_quick_start(store, config)
    sub = subscribers.add_subscriber(store, config, "pablo0@example.org", language="es",
                                     series=(SLUG,)).subscriber
    assert sub is not None and sub.id is not None
    subscribers.send_confirmation(store, config, sub)
    mail = smtp_server.recorder.wait_for(1)[0].message
    with store.read() as conn:
        asked = sq.confirm_sent_at(conn, sub.id)
    assert asked is not None
    local = asked.astimezone(config.zone)
    when = f"{local.day} de {SPANISH_MONTHS[local.month - 1]} de {local.year}, " \
           f"{local.hour}:{local.minute:02d}"
    for part in ("plain", "html"):
        body = mail.get_body((part,)).get_content()  # type: ignore[union-attr]
        assert SPANISH_TITLE in body, part
        assert "p•••0@example.org" in body, part
        assert when in body, (part, when)
        assert "pablo0@" not in body, part  # the address itself only in the To header
