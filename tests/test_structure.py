"""One implementation of each thing (issue 12): the CSRF field is tokens.make_csrf's and
nothing else passes; the secret key file is read once per process; the one status report
feeds /healthz; a ValidationError carries its message as a field."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from seriesfeed import actions, tokens
from seriesfeed.actions import subscribers
from seriesfeed.clock import now_utc
from seriesfeed.config import Config, load_config
from seriesfeed.errors import ImportError_, ValidationError
from seriesfeed.store import Store
from seriesfeed.web import create_app
from tests.conftest import ConfigFactory


def _pending(store: Store, config: Config) -> str:
    """A pending subscriber's confirmation link token, as the confirmation mail has it."""
    added = subscribers.add_subscriber(store, config, "ana@example.org", language="en")
    sub = added.subscriber
    assert sub is not None and sub.id is not None
    sent_at = now_utc()
    assert subscribers.queue_confirmation(store, config, sub, sent_at)
    link = tokens.confirm_link(config, tokens.ensure_secret_key(config), sub.id, sent_at)
    return link.rsplit("/", 1)[-1]


def test_the_web_form_uses_the_one_csrf_implementation(store: Store, config: Config) -> None:
    token = _pending(store, config)
    key = tokens.ensure_secret_key(config)
    client = TestClient(create_app(config, store), base_url=config.public_url)
    shown = client.get(f"/confirm/{token}")
    assert shown.status_code == 200
    field = re.search(r'name="csrf" value="([^"]+)"', shown.text)
    assert field is not None
    assert tokens.check_csrf(key, token, field.group(1))  # the page's field is make_csrf's
    assert not tokens.check_csrf(key, token + "x", field.group(1))  # bound to that link
    other = tokens.make_csrf(key, "another-link")
    assert client.post(f"/confirm/{token}", data={"csrf": other}).status_code == 403
    made = tokens.make_csrf(key, token)  # what tokens makes, the web accepts
    done = client.post(f"/confirm/{token}", data={"csrf": made})
    assert done.status_code == 200 and "You are subscribed" in done.text


def test_the_secret_key_file_is_read_once(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = load_config(make_config(), env={})
    first = tokens.ensure_secret_key(config)
    path = config.resolve("var/secret_key")
    assert path.read_bytes().strip() == first
    path.write_bytes(b"0" * 64)  # changed under a running process: it keeps the key it read
    assert tokens.ensure_secret_key(config) == first


def test_health_comes_from_the_one_status_report(store: Store, config: Config) -> None:
    judged = actions.health(config, store)
    assert judged.state == "up" and judged.reasons == []
    assert judged.report is not None and judged.report["outbox"] == \
        actions.status_report(config, store, figures=False)["outbox"]
    client = TestClient(create_app(config, store), base_url=config.public_url)
    body = client.get("/healthz").json()
    assert body == {"status": "up", "reasons": []}


def test_errors_carry_their_message_as_a_field() -> None:
    err = ValidationError("not a valid email address (the part after the @: x)",
                          field="email")
    assert str(err) == "email: not a valid email address (the part after the @: x)"
    assert err.reason == "not a valid email address (the part after the @: x)"
    imp = ImportError_("the title is empty: see line 3", path="a.csv", line=4, field="title")
    assert imp.reason == "the title is empty: see line 3"  # not cut at its own ": "
