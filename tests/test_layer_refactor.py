"""What the "one verb layer over one SQL layer" refactor (issue 12) must not have changed,
as seen from outside (found by attacking it). Tokens are pinned to bytes made by the code
before the refactor (3565a41); the caches the refactor added (a token's purpose key, the
parsed ``[mail] from``) must neither keep an old value alive nor hide an error; ``status``
lists the jobs the daemon runs; and a bad schedule names the key an operator has to edit."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from seriesfeed import emails, messages, tokens
from seriesfeed.actions import jobs
from seriesfeed.actions.sources import list_sources
from seriesfeed.actions.status import status_report
from seriesfeed.config import Config, load_config
from seriesfeed.daemon import build_daemon
from seriesfeed.errors import ConfigError, ValidationError
from seriesfeed.store import Store
from tests.conftest import ConfigFactory

KEY = b"0123456789abcdef0123456789abcdef"
NOW = 1700000000
# made by 3565a41 (before the refactor): make_token(KEY, purpose, 42, bound="x", now=NOW)
# and make_csrf(KEY, "abc.def", now=NOW)
OLD = {
    tokens.Purpose.CONFIRM: "eyJzIjo0MiwidCI6MTcwMDAwMDAwMCwiYiI6IngifQ."
                            "Rut_IAdLig75hz4rq3qpScO8sQ0wjoPDjE0YvmFQi94",
    tokens.Purpose.UNSUBSCRIBE: "eyJzIjo0MiwidCI6MTcwMDAwMDAwMCwiYiI6IngifQ."
                                "DMJB-TTm21_VOz2ZwS9HBwiVSJnovIq9XT71OqNsDvo",
    tokens.Purpose.PREFERENCES: "eyJzIjo0MiwidCI6MTcwMDAwMDAwMCwiYiI6IngifQ."
                                "XtE2upaKTmyGxpcgYsIsMxcxzqjDLb7EwkpHasg4Yl4",
}
OLD_CSRF = ("eyJzIjowLCJ0IjoxNzAwMDAwMDAwLCJiIjoiZWJiMzEyN2JmNWM3YzRiNGU0MmI1MTcxMGY0OTQ2YzFjMWQw"
            "NWIzMzFkMjM3OWRkMTVlM2E1NDMxZWQ5MzQxNiJ9.5pdF0ObyGl9Y-S1tqShOPkQG88iA-IP35IzYbGHEh10")


def test_tokens_are_the_bytes_the_old_code_made() -> None:
    for purpose, old in OLD.items():
        assert tokens.make_token(KEY, purpose, 42, bound="x", now=NOW) == old
        assert tokens.read_token(KEY, purpose, old, now=NOW + 60).subscriber_id == 42
    assert tokens.make_csrf(KEY, "abc.def", now=NOW) == OLD_CSRF
    assert tokens.check_csrf(KEY, "abc.def", OLD_CSRF, now=NOW + 60)


def test_a_new_secret_key_refuses_every_old_link_and_the_old_key_still_works() -> None:
    other = b"fedcba9876543210fedcba9876543210"
    for _ in range(2):  # the second round runs on the cached purpose keys
        for purpose, old in OLD.items():
            with pytest.raises(ValidationError, match=tokens.INVALID):
                tokens.read_token(other, purpose, old, now=NOW + 60)
            assert tokens.read_token(KEY, purpose, old, now=NOW + 60).bound == "x"
        assert not tokens.check_csrf(other, "abc.def", OLD_CSRF, now=NOW + 60)
    # a token of one purpose is refused for another, cached or not
    with pytest.raises(ValidationError):
        tokens.read_token(KEY, tokens.Purpose.UNSUBSCRIBE, OLD[tokens.Purpose.PREFERENCES],
                          now=NOW + 60)


def _with_from(config: Config, sender: str) -> Config:
    return dataclasses.replace(config, mail=dataclasses.replace(config.mail, from_=sender))


@pytest.mark.parametrize("sender", ["nope", "", "digest@", "a <b>"])
def test_a_bad_from_is_named_on_every_call(make_config: ConfigFactory, sender: str) -> None:
    bad = _with_from(load_config(make_config(), env={}), sender)
    for _ in range(3):  # lru_cache must not turn the second call into something else
        for call in (emails.sender_address, emails.message_domain,
                     lambda c: messages.feedback_id(c, 1, "en")):
            with pytest.raises(ValidationError) as info:
                call(bad)
            assert info.value.field == "mail.from" and "not an email address" in str(info.value)


def test_a_changed_from_is_used_at_once_and_idn_domains_are_a_labels(
        make_config: ConfigFactory) -> None:
    base = load_config(make_config(), env={})
    first = _with_from(base, '"Ann, B" <digest@example.org>')
    second = _with_from(base, "Bücher <d@bücher.de>")
    for _ in range(2):
        assert str(emails.sender_address(first)) == "Ann B <digest@example.org>"
        assert messages.feedback_id(first, 7, "es") == "digest7:es:digest:example.org"
        assert emails.sender_address(second).domain == "bücher.de"
        assert messages.feedback_id(second, None, "en") == "digest0:en:digest:xn--bcher-kva.de"


def test_status_lists_the_jobs_the_daemon_runs(make_config: ConfigFactory,
                                               store: Store) -> None:
    path = make_config('[sources.news]\nurl = "https://news.example/feed.xml"\n'
                       'schedule = "*/20 * * * *"\n')
    config = load_config(path, env={})
    config = dataclasses.replace(config, mail=dataclasses.replace(
        config.mail, bounce_maildir="var/bounces"))
    daemon = build_daemon(config, store, serve_web=False)
    recorded = [j.name for j in daemon.jobs if j.record]
    assert recorded == ["feeds", "digest-daily", "digest-weekly", "bounces"]
    report = status_report(config, store, figures=False)
    assert [j["name"] for j in report["jobs"]] == recorded
    assert [p.name for p in jobs.plan(config)] == [
        "outbox", "store-check", "feeds", "digest-daily", "digest-weekly", "source-news",
        "bounces"]
    planned = [p.name for p in jobs.plan(config)]
    assert [j.name for j in daemon.jobs][:len(planned)] == planned
    now = datetime.now(config.zone)
    by_name = {j.name: j for j in daemon.jobs}
    for shown in report["jobs"]:
        trigger = by_name[shown["name"]].trigger
        if trigger is None:
            assert shown["next"] is None
        else:
            assert shown["next"] is not None
            assert trigger.get_next_fire_time(None, now) is not None


def test_a_bad_source_schedule_names_the_key_to_edit(make_config: ConfigFactory) -> None:
    # "*/61" passes the config's shape check; APScheduler refuses it. The message must name
    # the TOML key (sources.news.schedule), as `sources list` and the config loader do, not
    # "schedule.sources.news" (no such key) that `status` and `run` used to print.
    config = load_config(make_config('[sources.news]\nurl = "https://news.example/f"\n'
                                     'schedule = "*/61 * * * *"\n'), env={})
    with pytest.raises(ConfigError) as info:
        jobs.plan(config)
    assert str(info.value).startswith("sources.news.schedule: '*/61 * * * *'")
    assert "schedule.sources" not in str(info.value)


def test_sources_list_names_the_same_key(make_config: ConfigFactory, store: Store) -> None:
    config = load_config(make_config('[sources.news]\nurl = "https://news.example/f"\n'
                                     'schedule = "*/61 * * * *"\n'), env={})
    with pytest.raises(ConfigError) as info:
        list_sources(store, config)
    assert str(info.value).startswith("sources.news.schedule: ")
