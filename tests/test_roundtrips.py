"""Round trips an operator relies on: subscribers export -> import on an empty store, and
entries export (JSON and CSV) -> import, each compared by exporting again."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from seriesfeed.actions import subscribers
from seriesfeed.config import load_config
from seriesfeed.errors import ConfigError
from seriesfeed.store import open_store
from seriesfeed.store import subscribers as sq
from seriesfeed.store.tables import suppressions
from tests.conftest import EXAMPLE_JSON, SEED_PAGE, CliResult
from tests.smtp_server import SmtpServer

SLUG = "reflections-on-the-iso-crisis"


def _site(make_config: Callable[..., Path], url: str, smtp: SmtpServer | None = None) -> Path:
    sections: dict[str, dict[str, object]] = {"database": {"url": url},
                                              "security": {"secret_key": "r" * 32}}
    if smtp is not None:
        sections["smtp"] = {"host": smtp.host, "port": smtp.port, "security": "none"}
    return make_config(**sections)


def _populate(run_cli: Callable[..., CliResult], site: Path) -> None:
    for path in (SEED_PAGE, EXAMPLE_JSON):
        assert run_cli("--config", site, "import", path).code == 0
    for args in (["ann@example.org", "--name", "Ann", "--confirmed", "--series", SLUG],
                 ["=bob@example.org", "--lang", "es", "--frequency", "daily", "--confirmed"],
                 ["cai@example.org", "--confirmed"], ["dee@example.org", "--confirmed"],
                 ["eve@example.org", "--confirmed"], ["fay@example.org"]):
        if args[0].startswith("="):
            args[0] = args[0][1:]
        assert run_cli("--config", site, "subscribers", "add", *args).code == 0
    config = load_config(site, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        subscribers.unsubscribe_address(store, "cai@example.org")
        with store.write() as conn:
            dee = sq.get(conn, email="dee@example.org")
            eve = sq.get(conn, email="eve@example.org")
            assert dee and eve and dee.id and eve.id
            sq.update_fields(conn, dee.id, status="bounced", hard_bounces=3)
            # a complaint: unsubscribed and suppressed at once
            sq.unsubscribe(conn, eve.id, datetime.now(UTC))
            conn.execute(insert(suppressions).values(email_hash=sq.email_hash(eve.email),
                                                     reason="complaint",
                                                     created_at=datetime.now(UTC)))
    finally:
        store.close()


def _export(run_cli: Callable[..., CliResult], site: Path, out: Path) -> bytes:
    result = run_cli("--config", site, "subscribers", "export", "--out", out)
    assert result.code == 0, result
    return out.read_bytes()


def test_subscribers_export_then_import_on_an_empty_store_restores_every_row(
        run_cli: Callable[..., CliResult], make_config: Callable[..., Path], tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    first = _site(make_config, f"sqlite:///{tmp_path / 'a.sqlite3'}", smtp_server)
    _populate(run_cli, first)
    exported = _export(run_cli, first, tmp_path / "first.csv")
    entries_json = tmp_path / "entries.json"
    assert run_cli("--config", first, "entries", "export", "--out", entries_json).code == 0
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert {r["email"]: r["status"] for r in rows} == {
        "ann@example.org": "confirmed", "bob@example.org": "confirmed",
        "cai@example.org": "unsubscribed", "dee@example.org": "bounced",
        "eve@example.org": "unsubscribed", "fay@example.org": "pending"}
    assert {r["email"]: r["suppressed"] for r in rows}["eve@example.org"] == "complaint"
    assert {r["email"]: r["series"] for r in rows}["ann@example.org"] == SLUG

    second = _site(make_config, f"sqlite:///{tmp_path / 'b.sqlite3'}", smtp_server)
    assert run_cli("--config", second, "import", entries_json).code == 0
    sent_before = len(smtp_server.recorder.messages)
    imported = run_cli("--config", second, "subscribers", "import", tmp_path / "first.csv")
    assert imported.code == 0, imported
    assert "6 added, 0 skipped" in imported.out
    assert "1 pending: no confirmation mail sent" in imported.out
    assert len(smtp_server.recorder.messages) == sent_before  # not asked: nothing sent
    assert _export(run_cli, second, tmp_path / "second.csv") == exported  # identical

    # suppressed rows stay suppressed: the form cannot bring them back, no digest reaches them
    config = load_config(second, env={})
    store = open_store(config.database.url, config.base_dir)
    try:
        for email in ("cai@example.org", "dee@example.org", "eve@example.org"):
            again = subscribers.add_subscriber(store, config, email, resubscribe=False,
                                                 source="form")
            assert not again.send_confirmation
            assert again.subscriber is None or again.subscriber.status.value != "confirmed"
        assert subscribers.add_subscriber(store, config, "eve@example.org",
                                            resubscribe=True).subscriber is None
    finally:
        store.close()
    listed = json.loads(run_cli("--config", second, "subscribers", "list", "--json").out)
    assert sorted(s["email"] for s in listed if s["status"] == "confirmed") == [
        "ann@example.org", "bob@example.org"]


def test_imported_pending_rows_get_confirmation_mail_only_when_asked(
        run_cli: Callable[..., CliResult], make_config: Callable[..., Path], tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    site = _site(make_config, f"sqlite:///{tmp_path / 'c.sqlite3'}", smtp_server)
    people = tmp_path / "people.csv"
    people.write_text("email,status\nann@example.org,pending\nbob@example.org,confirmed\n"
                      "cai@example.org,\n", encoding="utf-8")
    result = run_cli("--config", site, "subscribers", "import", people, "--send-confirmations")
    assert result.code == 0, result
    assert "2 pending: confirmation mail sent to 2" in result.out
    got = sorted(r for m in smtp_server.recorder.wait_for(2) for r in m.recipients)
    assert got == ["ann@example.org", "cai@example.org"]


@pytest.mark.parametrize(("cells", "field"), [
    ("ann@example.org,,en,weekly,gone", "status"),
    ("ann@example.org,,en,weekly,confirmed,no-such-series", "series"),
    ("ann@example.org,,en,weekly,confirmed,,2026-01-01T10:00:00", "created_at"),
    ("ann@example.org,,en,weekly,confirmed,,,,,,,,x", "hard_bounces"),
    ("ann@example.org,,en,weekly,confirmed,,,,,,,,0,maybe", "suppressed"),
    ("ann@example.org,,en,weekly,confirmed,,,,,,,,0,complaint", "suppressed"),
])
def test_a_bad_subscriber_row_names_line_and_field_and_imports_nothing(
        run_cli: Callable[..., CliResult], make_config: Callable[..., Path], tmp_path: Path,
        cells: str, field: str) -> None:
    site = _site(make_config, f"sqlite:///{tmp_path / 'd.sqlite3'}")
    bad = tmp_path / "bad.csv"
    header = ("email,name,language,frequency,status,series,created_at,confirmed_at,"
              "unsubscribed_at,consent_at,consent_ip,consent_source,hard_bounces,suppressed")
    bad.write_text(f"{header}\nok@example.org\n{cells}\n", encoding="utf-8")
    result = run_cli("--config", site, "subscribers", "import", bad)
    assert result.code == 1 and result.err.startswith("Error: ")
    assert "bad.csv:3, field " in result.err and field in result.err, result.err
    assert "Traceback" not in result.err
    assert json.loads(run_cli("--config", site, "subscribers", "list", "--json").out) == []


def test_entries_csv_keeps_each_language_series_title_or_refuses(
        run_cli: Callable[..., CliResult], make_config: Callable[..., Path],
        tmp_path: Path) -> None:
    first = _site(make_config, f"sqlite:///{tmp_path / 'e.sqlite3'}")
    for path in (SEED_PAGE, EXAMPLE_JSON):
        assert run_cli("--config", first, "import", path).code == 0
    out = tmp_path / "entries.csv"
    assert run_cli("--config", first, "entries", "export", "--format", "csv", "--out",
                   out).code == 0
    second = _site(make_config, f"sqlite:///{tmp_path / 'f.sqlite3'}")
    assert run_cli("--config", second, "import", out).code == 0
    again = tmp_path / "again.csv"
    assert run_cli("--config", second, "entries", "export", "--format", "csv", "--out",
                   again).code == 0
    assert again.read_bytes() == out.read_bytes()
    j1, j2 = tmp_path / "1.json", tmp_path / "2.json"
    for site, path in ((first, j1), (second, j2)):
        assert run_cli("--config", site, "entries", "export", "--out", path).code == 0
    series1 = json.loads(j1.read_text())["series"]
    assert json.loads(j2.read_text())["series"] == series1
    texts = series1[0]["texts"]
    assert texts["en"]["title"] == "Reflections on the ISO crisis"
    assert texts["es"]["title"] != texts["en"]["title"] and texts["es"]["description"]

    # a series text no row can carry: CSV refuses and points to JSON
    lonely = tmp_path / "lonely.json"
    lonely.write_text(json.dumps({"format": "seriesfeed/1", "series": [
        {"slug": "only-words", "texts": {"es": {"title": "Sólo palabras"}}}], "entries": []}),
        encoding="utf-8")
    assert run_cli("--config", first, "import", lonely).code == 0
    refused = run_cli("--config", first, "entries", "export", "--format", "csv")
    assert refused.code == 1 and "--format json" in refused.err and "only-words (es)" in \
        refused.err


def test_an_environment_variable_naming_no_section_is_an_error(
        make_config: Callable[..., Path]) -> None:
    site = make_config()
    with pytest.raises(ConfigError, match="SERIESFEED_SMPT_HOST: no such section"):
        load_config(site, env={"SERIESFEED_SMPT_HOST": "mail.example.org"})
    with pytest.raises(ConfigError, match="SERIESFEED_SMTP_HOTS: no such setting"):
        load_config(site, env={"SERIESFEED_SMTP_HOTS": "mail.example.org"})
    assert load_config(site, env={"SERIESFEED_TEST_CRASH_AT": "x:1"}).smtp.host == ""
