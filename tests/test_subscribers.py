"""Subscribers: the CLI, tokens, and the web flow against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.config import Config, load_config
from seriesfeed.errors import ValidationError
from seriesfeed.store import Store, open_store
from seriesfeed.web import create_app
from tests.conftest import SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer, free_port

SLUG = "reflections-on-the-iso-crisis"
Run = Callable[..., CliResult]


@pytest.fixture
def site(make_config: Callable[..., Path], database_url: str,
         smtp_server: SmtpServer) -> Path:
    return make_config(database={"url": database_url},
                       smtp={"host": smtp_server.host, "port": smtp_server.port,
                             "security": "none", "connections": 2},
                       web={"host": "127.0.0.1", "port": 8080,
                            "base_url": "https://feeds.example.org"},
                       security={"secret_key": "k" * 32})


@pytest.fixture
def app_parts(site: Path) -> Iterator[tuple[Config, Store]]:
    config = load_config(site, env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    yield config, store
    store.close()


def _subs(run_cli: Run, site: Path) -> list[dict[str, object]]:
    result = run_cli("--config", site, "subscribers", "list", "--json")
    assert result.code == 0, result
    data = json.loads(result.out)
    assert isinstance(data, list)
    return data


def test_cli_add_list_import_export_remove(run_cli: Run, site: Path, tmp_path: Path,
                                           smtp_server: SmtpServer) -> None:
    added = run_cli("--config", site, "subscribers", "add", "Ana@Example.org", "--lang", "es",
                    "--frequency", "daily", "--name", "Ana")
    assert added.code == 0, added
    assert "confirmation mail sent" in added.out
    mail = smtp_server.recorder.wait_for(1)[0]
    assert mail.recipients == ["Ana@example.org"]
    assert mail.message["Subject"].startswith("Confirma tu suscripción")
    assert str(mail.message["To"]) == "Ana@example.org"  # no unverified name in headers
    assert run_cli("--config", site, "subscribers", "add", "bob@example.org",
                   "--confirmed").code == 0
    subs = {s["email"]: s for s in _subs(run_cli, site)}
    assert subs["Ana@example.org"]["status"] == "pending"
    assert subs["Ana@example.org"]["language"] == "es"
    assert subs["bob@example.org"]["status"] == "confirmed"

    csv_in = tmp_path / "in.csv"
    csv_in.write_text("email,name,language,frequency,status\n"
                      "carol@example.org,=cmd|' /C calc'!A0,en,weekly,confirmed\n"
                      "BOB@example.org,,en,weekly,\n", encoding="utf-8")
    imported = run_cli("--config", site, "subscribers", "import", csv_in)
    assert imported.code == 0, imported
    assert "1 added, 1 skipped" in imported.out
    out = tmp_path / "out.csv"
    assert run_cli("--config", site, "subscribers", "export", "--out", out).code == 0
    exported = out.read_text(encoding="utf-8")
    assert exported.startswith("email,name,language,frequency,status")
    assert "'=cmd" in exported and "\n=cmd" not in exported and ",=cmd" not in exported

    removed = run_cli("--config", site, "subscribers", "remove", "carol@example.org")
    assert removed.code == 0
    assert "carol@example.org" not in {s["email"] for s in _subs(run_cli, site)}
    again = run_cli("--config", site, "subscribers", "import", csv_in)
    assert "0 added, 2 skipped" in again.out  # removed stays suppressed


def test_a_confirmation_that_could_not_be_sent_does_not_block_the_address(
        run_cli: Run, site: Path, smtp_server: SmtpServer) -> None:
    closed = free_port()  # nothing listens there: the relay is down
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SERIESFEED_SMTP_PORT", str(closed))
        down = run_cli("--config", site, "subscribers", "add", "wes@example.org")
    assert down.code == 0 and "confirmation mail queued" in down.out, down
    assert smtp_server.recorder.messages == []
    # the relay is back: asking again sends the queued mail at once, not 24 hours later
    again = run_cli("--config", site, "subscribers", "add", "wes@example.org")
    assert again.code == 0 and "confirmation mail sent" in again.out, again
    assert smtp_server.recorder.wait_for(1)[0].recipients == ["wes@example.org"]
    third = run_cli("--config", site, "subscribers", "add", "wes@example.org")
    assert "not sent: one was sent within the last 24 hours" in third.out, third
    assert len(smtp_server.recorder.messages) == 1


@pytest.mark.parametrize(("body", "line", "field"), [
    ("email\nnot-an-address\n", 2, "email"),
    ("email,language\na@example.org,xx\n", 2, "language"),
    ("email\na@example.org\nA@EXAMPLE.org\n", 3, "email"),
    # issue 16: a bounced row is restorable (export round trip); an unknown status is not
    ("email,status\na@example.org,gone\n", 2, "status"),
])
def test_bad_import_rows_name_line_and_field_and_import_nothing(
        run_cli: Run, site: Path, tmp_path: Path, body: str, line: int, field: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("email,name,language,frequency,status\nok@example.org,,en,weekly,\n"
                    if False else body, encoding="utf-8")
    result = run_cli("--config", site, "subscribers", "import", path)
    assert result.code == 1
    assert f":{line}" in result.err and f"field '{field}'" in result.err
    assert _subs(run_cli, site) == []


def test_tokens_refuse_forgery_mutation_purpose_swap_and_expiry() -> None:
    key = b"x" * 32
    token = tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, 42, now=1_000_000)
    assert tokens.read_token(key, tokens.Purpose.UNSUBSCRIBE, token).subscriber_id == 42
    with pytest.raises(ValidationError):
        tokens.read_token(key, tokens.Purpose.CONFIRM, token)
    with pytest.raises(ValidationError):
        tokens.read_token(b"y" * 32, tokens.Purpose.UNSUBSCRIBE, token)
    accepted = 0
    for i in range(len(token)):
        for repl in "AQ_-":
            mutated = token[:i] + repl + token[i + 1:]
            if mutated == token:
                continue
            try:
                tokens.read_token(key, tokens.Purpose.UNSUBSCRIBE, mutated)
                accepted += 1
            except ValidationError:
                pass
    assert accepted <= 2  # only base64 padding bits can flip without changing the bytes
    confirm = tokens.make_token(key, tokens.Purpose.CONFIRM, 1, now=1_000_000)
    with pytest.raises(ValidationError):
        tokens.read_token(key, tokens.Purpose.CONFIRM, confirm, now=1_000_000 + 8 * 86400)


def _link(mail_text: str, kind: str) -> str:
    match = re.search(rf"https://feeds\.example\.org(/{kind}/[A-Za-z0-9_\-.]+)", mail_text)
    assert match, mail_text
    return match.group(1)


def test_web_flow_confirm_by_post_and_one_click_unsubscribe(
        app_parts: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = app_parts
    client = TestClient(create_app(config, store), base_url="https://feeds.example.org")
    page = client.get(f"/es/{SLUG}/")
    assert page.status_code == 200 and 'action="https://feeds.example.org/subscribe"' in page.text
    assert page.headers["x-frame-options"] == "DENY"
    response = client.post("/subscribe", data={
        "email": "lector@example.org", "name": "Lector\r\nBcc: victim@evil.example",
        "language": "es", "frequency": "weekly", "series": SLUG, "website": ""},
        headers={"Origin": "https://feeds.example.org"})
    assert response.status_code == 200 and "Revisa tu correo" in response.text
    mail = smtp_server.recorder.wait_for(1)[0]
    assert mail.recipients == ["lector@example.org"]
    assert b"Bcc" not in mail.data and b"victim" not in mail.data
    text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    confirm = _link(text, "confirm")
    shown = client.get(confirm)
    assert shown.status_code == 200 and "Confirmar mi suscripción" in shown.text
    client.head(confirm)
    with store.read() as conn:
        from seriesfeed.store import subscribers as sq
        assert sq.get(conn, email="lector@example.org").status.value == "pending"  # type: ignore[union-attr]
    forged = client.post(confirm, data={"csrf": "nope"})
    assert forged.status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    done = client.post(confirm, data={"csrf": csrf})
    assert done.status_code == 200 and "Suscripción confirmada" in done.text
    assert client.post(confirm, data={"csrf": csrf}).status_code == 400  # single use
    unsubscribe = re.search(r'href="https://feeds\.example\.org(/unsubscribe/[^"]+)"',
                            done.text).group(1)  # type: ignore[union-attr]
    assert client.get(unsubscribe).status_code == 200
    with store.read() as conn:
        assert sq.get(conn, email="lector@example.org").status.value == "confirmed"  # type: ignore[union-attr]
    cookieless = TestClient(create_app(config, store), base_url="https://feeds.example.org")
    for _ in range(2):  # idempotent
        one_click = cookieless.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                                    headers={"Content-Type":
                                             "application/x-www-form-urlencoded"})
        assert one_click.status_code == 200
    with store.read() as conn:
        assert sq.get(conn, email="lector@example.org").status.value == "unsubscribed"  # type: ignore[union-attr]
    # erased later (subscribers remove): an old mail's button still gets its success
    subscribers.remove_subscriber(store, "lector@example.org")
    after_removal = cookieless.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert after_removal.status_code == 200 and "lector" not in after_removal.text
    assert cookieless.get(unsubscribe).status_code == 200
    forged = cookieless.post(unsubscribe[:-3] + "AAA", content=b"List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 400


def test_no_enumeration_cross_site_rate_limit_and_honeypot(
        app_parts: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    config, store = app_parts
    client = TestClient(create_app(config, store), base_url="https://feeds.example.org",
                        client=("127.0.0.9", 5000))
    form = {"email": "x@example.org", "language": "en", "frequency": "daily"}
    first = client.post("/subscribe", data=form)
    second = client.post("/subscribe", data=form)  # now pending
    assert first.status_code == second.status_code == 200 and first.text == second.text
    smtp_server.recorder.wait_for(1)
    assert len(smtp_server.recorder.messages) == 1  # at most one confirmation per hour
    cross = client.post("/subscribe", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    evil = client.post("/subscribe", data=form, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    bot = client.post("/subscribe", data={**form, "email": "v@example.org", "website": "x"})
    assert bot.status_code == 200 and bot.text == first.text
    codes = [client.post("/subscribe", data={**form, "email": f"n{i}@example.org"}).status_code
             for i in range(6)]
    assert 429 in codes
    assert client.get("/subscribe?lang=xx").status_code == 404
    assert client.get("/confirm/forged.token").status_code == 400
    big = client.post("/subscribe", content=b"email=" + b"a" * 20000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413


def test_preferences_change_language_and_frequency_by_post_only(
        app_parts: tuple[Config, Store]) -> None:
    from seriesfeed.actions import subscribers

    config, store = app_parts
    result = subscribers.add_subscriber(store, config, "pref@example.org", language="en",
                                          frequency="weekly", confirmed=True)
    assert result.subscriber is not None and result.subscriber.id is not None
    link = tokens.preferences_link(config, tokens.ensure_secret_key(config),
                                          result.subscriber.id)
    path = link.removeprefix("https://feeds.example.org")
    client = TestClient(create_app(config, store), base_url="https://feeds.example.org")
    shown = client.get(path)
    assert shown.status_code == 200 and 'name="frequency"' in shown.text
    assert client.post(path, data={"language": "es", "frequency": "daily"}).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    saved = client.post(path, data={"csrf": csrf, "language": "es", "frequency": "daily"})
    assert saved.status_code == 200 and "Tus preferencias se han guardado" in saved.text
    with store.read() as conn:
        from seriesfeed.store import subscribers as sq
        sub = sq.get(conn, email="pref@example.org")
    assert sub is not None and (sub.language, sub.frequency.value) == ("es", "daily")
    bad = client.post(path, data={"csrf": csrf, "language": "xx", "frequency": "daily"})
    assert bad.status_code == 400


def test_preferences_choose_the_series_followed(app_parts: tuple[Config, Store]) -> None:
    from seriesfeed.actions import subscribers
    from seriesfeed.models import Entry
    from seriesfeed.store import subscribers as sq

    config, store = app_parts
    actions.add_entry(store, config, Entry(series="another-series", language="en",
                                           title="Elsewhere", summary="Other",
                                           published=datetime(2019, 5, 1, tzinfo=UTC)),
                      series_title="Another series")
    added = subscribers.add_subscriber(store, config, "fan@example.org", language="en",
                                         confirmed=True)
    assert added.subscriber is not None and added.subscriber.id is not None
    path = tokens.preferences_link(config, tokens.ensure_secret_key(config),
                                          added.subscriber.id).removeprefix(
                                              "https://feeds.example.org")
    client = TestClient(create_app(config, store), base_url="https://feeds.example.org")
    shown = client.get(path)
    boxes = re.findall(r'<input type="checkbox" name="series" value="([^"]+)"( checked)?',
                       shown.text)
    assert boxes == [("another-series", " checked"), (SLUG, " checked")]  # none chosen: all
    csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf, "language": "en", "frequency": "weekly", "series_shown": "1"}

    def followed() -> tuple[str, ...]:
        with store.read() as conn:
            sub = sq.get(conn, email="fan@example.org")
        assert sub is not None
        return sub.series

    one = client.post(path, data={**form, "series": [SLUG]})
    assert one.status_code == 200 and followed() == (SLUG,)
    assert 'value="another-series">' in one.text  # now unchecked
    both = client.post(path, data={**form, "series": [SLUG, "another-series"]})
    assert both.status_code == 200 and followed() == ()  # every series: stored as "all"
    none = client.post(path, data=form)
    assert none.status_code == 400 and "at least one series" in none.text
    unknown = client.post(path, data={**form, "series": ["no-such-series"]})
    assert unknown.status_code == 400 and followed() == ()


def test_an_expired_confirm_link_shows_an_error_page_and_confirms_nothing(
        app_parts: tuple[Config, Store], smtp_server: SmtpServer) -> None:
    import time_machine

    from seriesfeed.store import subscribers as sq

    config, store = app_parts
    client = TestClient(create_app(config, store), base_url="https://feeds.example.org")
    posted = client.post("/subscribe", data={"email": "late@example.org", "language": "en",
                                             "frequency": "daily", "website": ""},
                         headers={"Origin": "https://feeds.example.org"})
    assert posted.status_code == 200
    mail = smtp_server.recorder.wait_for(1)[0]
    confirm = _link(mail.message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
                    "confirm")
    shown = client.get(confirm)  # fresh: the page with its button
    csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    with time_machine.travel(datetime.now(UTC) + timedelta(days=8), tick=False):
        stale_page = client.get(confirm)
        stale_post = client.post(confirm, data={"csrf": csrf})
    assert stale_page.status_code == 400 and "invalid or has expired" in stale_page.text
    assert stale_post.status_code in (400, 403)
    with store.read() as conn:
        sub = sq.get(conn, email="late@example.org")
    assert sub is not None and sub.status.value == "pending"
