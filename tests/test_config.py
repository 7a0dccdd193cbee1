"""config.toml loading: defaults, overrides from the environment, errors that name the key."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest

from seriesfeed import tokens
from seriesfeed.config import load_config
from seriesfeed.errors import ConfigError
from tests.conftest import ROOT, ConfigFactory


def test_shipped_config_loads_with_both_languages() -> None:
    cfg = load_config(ROOT / "config.toml", env={})
    assert set(cfg.languages) == {"en", "es"}
    assert cfg.languages["es"].bylines == ["Obrero Socialista"]
    assert cfg.site.time_zone == "America/New_York"
    assert "by-nc-nd 3.0" in cfg.site.rights
    assert cfg.mail.from_.startswith("SocialistWorker.org")
    assert cfg.smtp.host == ""


def test_every_key_of_the_shipped_file_is_documented_by_a_comment() -> None:
    lines = (ROOT / "config.toml").read_text(encoding="utf-8").splitlines()
    data = tomllib.loads("\n".join(lines))
    assert data  # parsed
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "[")) or "=" not in stripped:
            continue
        # a key is documented when a comment sits above it within its block, or the same
        # key was documented in an earlier language table
        block = []
        for prev in reversed(lines[:number]):
            if not prev.strip() or prev.strip().startswith("["):
                break
            block.append(prev.strip())
        key = stripped.split("=")[0].strip()
        documented = any(b.startswith("#") for b in block) or any(
            f"{key} =" in earlier for earlier in lines[:number - len(block)])
        assert documented, f"config.toml line {number + 1}: '{key}' has no comment"


def test_missing_default_file_gives_embedded_defaults(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={})
    assert cfg.path is None
    assert cfg.base_dir == tmp_path
    assert cfg.resolve(cfg.mail.maildir) == tmp_path / "var" / "maildir"
    assert set(cfg.languages) == {"en", "es"}


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml", env={})


def test_environment_overrides_the_file(make_config: ConfigFactory) -> None:
    path = make_config()
    cfg = load_config(path, env={
        "SERIESFEED_DATABASE_URL": "postgresql://u@127.0.0.1:5432/x",
        "SERIESFEED_SMTP_PORT": "2525",
        "SERIESFEED_WEB_PORT": "9000",
        "SERIESFEED_SMTP_RATE": "12.5",
        "SERIESFEED_LANGUAGES_ES_FEED_TITLE": "Obrero",
        "SERIESFEED_SITE_ORGANIZATIONS": "A Org, B Org",
        "SERIESFEED_MAIL_FROM": "x@example.org",
    })
    assert cfg.database.url == "postgresql://u@127.0.0.1:5432/x"
    assert cfg.smtp.port == 2525
    assert cfg.web.port == 9000
    assert cfg.smtp.rate == 12.5
    assert cfg.languages["es"].feed_title == "Obrero"
    assert cfg.site.organizations == ["A Org", "B Org"]
    assert cfg.mail.from_ == "x@example.org"


@pytest.mark.parametrize(("extra_section", "message", "key"), [
    ({"smtp": {"prot": 25}}, "unknown key", "smtp.prot"),
    ({"smtp": {"port": "twenty-five"}}, "must be an integer", "smtp.port"),
    ({"smtp": {"port": 70000}}, "not a TCP port", "smtp.port"),
    ({"smtp": {"security": "ssl"}}, "not one of starttls, tls, none", "smtp.security"),
    ({"web": {"base_url": "example.org/feeds"}}, "not an http(s) URL", "web.base_url"),
    ({"database": {"url": "mysql://x"}}, "not a sqlite:/// or postgresql:// URL",
     "database.url"),
    ({"feeds": {"max_entries": 0}}, "greater than 0", "feeds.max_entries"),
    ({"web": {"base_url": "https://feeds.example.org/ x"}}, "not an http(s) URL",
     "web.base_url"),
    ({"site": {"rights_url": "not a url"}}, "not an http(s) URL", "site.rights_url"),
    ({"site": {"entry_url_pattern": "{base_url}/{slug}/"}},
     "unknown placeholder 'base_url' (use {site_url} {yyyy} {mm} {dd} {slug} {series} "
     "{language})", "site.entry_url_pattern"),
    ({"schedule": {"daily": "99 99 * * *"}}, "99 is out of range for the minute (0-59)",
     "schedule.daily"),
    ({"schedule": {"weekly": "0 7 * * mon;rm"}}, "not valid cron syntax", "schedule.weekly"),
    ({"schedule": {"feeds": "*/10 * * 13 *"}}, "out of range for the month", "schedule.feeds"),
    ({"mail": {"from": "nobody"}}, "is not an address", "mail.from"),
    ({"mail": {"unsubscribe_mailto": "Unsub <u@example.org>"}}, "plain email address",
     "mail.unsubscribe_mailto"),
])
def test_bad_values_name_the_key_and_line(make_config: ConfigFactory,
                                          extra_section: dict[str, dict[str, object]],
                                          message: str, key: str) -> None:
    path = make_config(**extra_section)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    err = info.value
    assert message in str(err)
    assert err.key == key
    assert err.line is not None
    _section, name = key.split(".")
    line = path.read_text(encoding="utf-8").splitlines()[err.line - 1]
    assert line.startswith(name), line
    assert f"{path}:{err.line}:" in str(err)


def test_bad_time_zone_is_named(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace(
        'time_zone = "America/New_York"', 'time_zone = "America/Nowhere"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"site.time_zone: 'America/Nowhere' is not a known"):
        load_config(path, env={})


def test_unknown_section_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[smpt]\nhost = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="smpt: unknown section") as info:
        load_config(path, env={})
    assert info.value.line == 1
    path.write_text("[smtp\nhost = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, env={})


def test_bad_environment_value_names_the_variable(make_config: ConfigFactory) -> None:
    path = make_config()
    with pytest.raises(ConfigError, match="SERIESFEED_SMTP_PORT: must be an integer"):
        load_config(path, env={"SERIESFEED_SMTP_PORT": "abc"})
    with pytest.raises(ConfigError, match="SERIESFEED_SMTP_PASWORD: no such setting"):
        load_config(path, env={"SERIESFEED_SMTP_PASWORD": "x"})


def test_default_language_must_be_configured(make_config: ConfigFactory) -> None:
    path = make_config(extra='\n[languages.fr]\nname = "Français"\n')
    cfg = load_config(path, env={})
    assert cfg.languages["fr"].locale == "fr"
    text = path.read_text(encoding="utf-8").replace('default_language = "en"',
                                                    'default_language = "de"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"site\.default_language"):
        load_config(path, env={})


def test_a_default_language_from_the_environment_names_the_variable(
        make_config: ConfigFactory) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(make_config(), env={"SERIESFEED_SITE_DEFAULT_LANGUAGE": "fr"})
    assert str(info.value).startswith("SERIESFEED_SITE_DEFAULT_LANGUAGE: 'fr' is not one")


def test_valid_cron_expressions_pass(make_config: ConfigFactory) -> None:
    cfg = load_config(make_config(schedule={"daily": "30 6 * * 1-5", "weekly": "0 7 * * mon",
                                            "feeds": "*/5 0-23/2 1,15 jan-dec sun"}), env={})
    assert cfg.schedule.feeds == "*/5 0-23/2 1,15 jan-dec sun"


def test_an_unknown_locale_is_refused_at_start_with_its_line(make_config: ConfigFactory,
                                                            run_cli) -> None:  # type: ignore[no-untyped-def]
    path = make_config()
    text = path.read_text(encoding="utf-8").replace('locale = "es"', 'locale = "xx_QQ"', 1)
    path.write_text(text, encoding="utf-8")
    result = run_cli("--config", path, "entries", "list")
    assert result.code == 2, result
    line = text.splitlines().index('locale = "xx_QQ"') + 1
    assert result.err.startswith(f"Error: {path}:{line}: languages.es.locale: 'xx_QQ'"), result


def test_relative_paths_resolve_against_the_config_folder(make_config: ConfigFactory) -> None:
    path = make_config()
    cfg = load_config(path, env={})
    assert cfg.resolve("var/maildir") == path.parent / "var" / "maildir"
    assert cfg.resolve("/abs/dir") == Path("/abs/dir")


def test_cli_reports_config_errors_in_one_line_with_exit_2(make_config: ConfigFactory,
                                                           run_cli) -> None:  # type: ignore[no-untyped-def]
    path = make_config(smtp={"port": "x"})
    result = run_cli("--config", path, "init")
    assert result.code == 2
    assert result.err.startswith("Error: ")
    assert result.err.count("\n") == 1
    assert "smtp.port" in result.err
    assert "Traceback" not in result.err


def test_a_short_secret_key_is_refused_at_load_from_the_environment(
        make_config: ConfigFactory, run_cli, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    """A key too short to sign links used to load fine, and `subscribers add` queued a
    confirmation that could never be built; it is a bad value like any other."""
    path = make_config(database={"url": f"sqlite:///{tmp_path / 'k.db'}"})
    monkeypatch.setenv("SERIESFEED_SECURITY_SECRET_KEY", "short")
    result = run_cli("--config", path, "subscribers", "add", "ann@example.org")
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and result.err.startswith("Error: ")
    assert "SERIESFEED_SECURITY_SECRET_KEY" in result.err and "32" in result.err
    assert not (tmp_path / "k.db").exists()  # refused before the store was touched
    # 32 bytes is enough; a key counts in bytes, so 11 three-byte characters are too
    monkeypatch.setenv("SERIESFEED_SECURITY_SECRET_KEY", "€" * 11)
    assert load_config(path).security.secret_key == "€" * 11
    with pytest.raises(ConfigError, match="SERIESFEED_SECURITY_SECRET_KEY") as caught:
        load_config(path, env={"SERIESFEED_SECURITY_SECRET_KEY": "é" * 7})
    assert caught.value.key == "security.secret_key"


def test_a_short_secret_key_in_the_file_names_the_key_and_line(
        make_config: ConfigFactory) -> None:
    path = make_config(security={"secret_key": "x" * 15})
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == "security.secret_key" and caught.value.line is not None
    assert load_config(make_config(security={"secret_key": "x" * 32}), env={})
    assert load_config(make_config(security={"secret_key": ""}), env={})  # generated


def test_a_key_that_already_signs_links_is_kept_with_a_warning(
        make_config: ConfigFactory, caplog: pytest.LogCaptureFixture) -> None:
    """A 16 to 31-byte key passed before keys had to have 32: it signs unsubscribe links in
    mail people keep for a year (invariant 8), so refusing it would force a rotation that
    breaks them. It loads, signs, and says once that it should be rotated."""
    config = load_config(make_config(security={"secret_key": "k" * 20}), env={})
    with caplog.at_level(logging.WARNING, logger="seriesfeed.tokens"):
        first = tokens.make_token(tokens.ensure_secret_key(config), tokens.Purpose.UNSUBSCRIBE, 7)
        tokens.ensure_secret_key(config)
    assert tokens.read_token(b"k" * 20, tokens.Purpose.UNSUBSCRIBE, first).subscriber_id == 7
    warnings = [r.getMessage() for r in caplog.records if "rotate" in r.getMessage()]
    assert len(warnings) == 1 and "20 bytes" in warnings[0]
