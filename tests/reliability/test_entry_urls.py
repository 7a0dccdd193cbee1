"""B7 (issue 11, item 10): entry URLs and ids are checked on every import path. A URL with
a quote or a space once became part of a stored tag id; now every path (JSON, CSV, feed
files, ``entries add``, series texts) refuses whitespace, quotes, ``<>`` and non-http(s) URLs
with the field and line named, imports nothing of the file, and percent-encodes what only
needs escaping (a non-ASCII path, an internationalised host as its A-label)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult

Run = Callable[..., CliResult]
SLUG = "url-series"


def _entry(n: int, **fields: Any) -> dict[str, Any]:
    return {"series": SLUG, "language": "en", "title": f"Entry {n}",
            "published": f"2020-01-{n:02d}", "url": f"https://example.org/{n}", **fields}


def _json(tmp_path: Path, entries: list[dict[str, Any]], series_url: str | None = None,
          name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"format": "seriesfeed/1", "series": [
        {"slug": SLUG, "texts": {"en": {"title": "URLs", "url": series_url}}}],
        "entries": entries}), encoding="utf-8")
    return path


def _csv(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text("series,language,title,url,published\n"
                    f"{SLUG},en,Fine,https://example.org/fine,2020-01-01\n"
                    f'{SLUG},en,Broken,"{url.replace(chr(34), chr(34) * 2)}",2020-01-02\n',
                    encoding="utf-8")
    return path


def _feed(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "in.atom"
    path.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id>
<updated>2020-01-02T00:00:00Z</updated>
<entry><title>Fine</title><id>urn:fine</id><link href="https://example.org/fine"/>
<updated>2020-01-01T00:00:00Z</updated></entry>
<entry><title>Broken</title><id>urn:broken</id><link href="{url.replace('"', '&quot;')
    .replace('<', '&lt;')}"/><updated>2020-01-02T00:00:00Z</updated></entry>
</feed>""", encoding="utf-8")
    return path


BAD_URLS = ['https://example.org/a"b', "https://example.org/a b", "https://example.org/a\tb",
            "https://example.org/<script>", "javascript:alert(1)", "ftp://example.org/x",
            "//example.org/x", "https://user:pw@example.org/x", "https://exa mple.org/"]


def _count(run_cli: Run, config_path: Path) -> int:
    listed = run_cli("--config", config_path, "entries", "list", "--json")
    assert listed.code == 0, listed
    return len(json.loads(listed.out))


@pytest.mark.catalogue("B7")
def test_bad_urls_and_ids_are_refused_on_every_import_path(
        run_cli: Run, config_path: Path, tmp_path: Path, figures: Callable[..., None]) -> None:
    refused = 0
    for bad in BAD_URLS:
        cases = [
            (_json(tmp_path, [_entry(1), _entry(2, url=bad)]), "in.json:2", "field 'url'"),
            (_csv(tmp_path, bad), "in.csv:3", "field 'url'"),
            (_json(tmp_path, [_entry(1)], series_url=bad, name="series.json"), "",
             "field 'series[1].texts.en.url'"),
        ]
        if not bad.startswith("https://exa mple") and "\t" not in bad:
            cases.append((_feed(tmp_path, bad), "", "field 'url'"))
        for path, where, field in cases:
            result = run_cli("--config", config_path, "import", path, "--series", SLUG) \
                if path.suffix == ".atom" else run_cli("--config", config_path, "import", path)
            assert result.code == 1, (bad, path.suffix, result)
            assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err
            assert where in result.err and field in result.err, (bad, result.err)
            assert "Traceback" not in result.err
            refused += 1
        added = run_cli("--config", config_path, "entries", "add", "--series", SLUG,
                        "--title", "By hand", "--published", "2020-02-01", "--url", bad)
        assert added.code == 1 and "url" in added.err, (bad, added)
        refused += 1
    for bad_id in ['tag:example.org,2020:/a "b"', "tag:example.org,2020:/a b", "<urn:x>", "x"]:
        result = run_cli("--config", config_path, "import",
                         _json(tmp_path, [_entry(1), _entry(2, id=bad_id)]))
        assert result.code == 1 and "in.json:2" in result.err and "field 'id'" in result.err, \
            (bad_id, result)
        refused += 1
    assert _count(run_cli, config_path) == 0  # one bad row: nothing of its file stored
    figures(**{"bad URLs and ids tried": refused, "refused with field and line": refused,
               "entries stored": 0})


@pytest.mark.catalogue("B7")
def test_what_only_needs_escaping_is_escaped(run_cli: Run, config_path: Path,
                                             tmp_path: Path) -> None:
    path = _json(tmp_path, [
        _entry(1, url="https://Bücher.example/Año/niño?q=café&x=1#sección"),
        _entry(2, url="https://example.org/a{b}|c^d/100%"),
        _entry(3, url="  https://example.org/padded  ")],
        series_url="https://example.org/serie/ñ")
    result = run_cli("--config", config_path, "import", path)
    assert result.code == 0, result
    listed = run_cli("--config", config_path, "entries", "list", "--json")
    urls = {e["title"]: (e["url"], e["id"]) for e in json.loads(listed.out)}
    assert urls["Entry 1"][0] == ("https://xn--bcher-kva.example/A%C3%B1o/ni%C3%B1o"
                                  "?q=caf%C3%A9&x=1#secci%C3%B3n")
    assert urls["Entry 2"][0] == "https://example.org/a%7Bb%7D%7Cc%5Ed/100%25"
    assert urls["Entry 3"][0] == "https://example.org/padded"
    for url, entry_id in urls.values():  # the minted tag ids are as clean as the URLs
        assert url.isascii() and entry_id.isascii()
        assert not any(c in entry_id for c in ' "<>')
    again = run_cli("--config", config_path, "import", path)  # normalising is idempotent
    assert again.code == 0 and "0 added" in again.out and "3 unchanged" in again.out, again


@pytest.mark.catalogue("B7")
def test_entries_add_stores_and_shows_the_normalised_url(run_cli: Run, config_path: Path
                                                         ) -> None:
    added = run_cli("--config", config_path, "entries", "add", "--series", SLUG, "--title",
                    "By hand", "--published", "2020-02-01", "--url",
                    "https://Bücher.example/año", "--json")
    assert added.code == 0, added
    assert json.loads(added.out)["url"] == "https://xn--bcher-kva.example/a%C3%B1o"
    # every other way to name an entry takes the URL as typed, too
    for args in (("entries", "show", "https://Bücher.example/año"),
                 ("entries", "remove", "https://BÜCHER.example/año")):
        assert run_cli("--config", config_path, *args).code == 0, args
