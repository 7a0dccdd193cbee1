"""Importers: the seed page, JSON, CSV and feed files, malformed and hostile input."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportSettings
from seriesfeed.importers.bylines import split_byline
from seriesfeed.importers.csvfmt import FORMULA_START, dump_csv, parse_csv
from seriesfeed.importers.feedfile import parse_feed
from seriesfeed.importers.jsonfmt import dump_json, parse_json
from seriesfeed.importers.parse import parse_file
from seriesfeed.importers.seriespage import parse_series_page
from seriesfeed.models import Author, AuthorKind, Entry, Series, SeriesText
from seriesfeed.text import clean_line, clean_text
from tests.conftest import SEED_PAGE

NY = ZoneInfo("America/New_York")
SETTINGS = ImportSettings(time_zone=NY, default_language="en",
                          language_markers={"es": ("Obrero Socialista",)},
                          organizations=("From SW",))


def test_seed_page_gives_the_series_and_twenty_entries() -> None:
    batch = parse_series_page(SEED_PAGE.read_bytes(), SETTINGS, source="seed")
    assert [s.slug for s in batch.series] == ["reflections-on-the-iso-crisis"]
    text = batch.series[0].texts["en"]
    assert text.title == "Reflections on the ISO crisis"
    assert text.description.startswith("SocialistWorker.org contributors reflect")
    entries = [i.entry for i in batch.entries]
    assert len(entries) == 20
    assert sum(e.language == "es" for e in entries) == 2
    assert all(e.section == "Obrero Socialista" for e in entries if e.language == "es")
    assert entries[0].published == datetime(2019, 3, 15, tzinfo=NY)
    assert entries[0].published.utcoffset() == timedelta(hours=-4)
    titles = [e.title for e in entries]
    assert "Critical thoughts about Draper’s “micro-sect”" in titles
    assert "The ISO’s vote to dissolve and what comes next" in titles
    assert batch.entries[0].line is not None and batch.entries[0].line > 60


@pytest.mark.parametrize(("byline", "expected"), [
    ("David Camfield, Todd Gordon, Brian McDougall and Sandra Sarner",
     ["David Camfield", "Todd Gordon", "Brian McDougall", "Sandra Sarner"]),
    ("Maryam A and Nikki W", ["Maryam A", "Nikki W"]),
    ("brian bean", ["brian bean"]),
    ("Ana López y Juan Pérez", ["Ana López", "Juan Pérez"]),
    ("A, B, and C", ["A", "B", "C"]),
])
def test_bylines_split_into_people(byline: str, expected: list[str]) -> None:
    authors = split_byline(byline)
    assert [a.name for a in authors] == expected
    assert {a.kind for a in authors} == {AuthorKind.PERSON}


@pytest.mark.parametrize(("byline", "expected"), [
    # an initial without its dot, as "Maryam A" above: the capital Y is no conjunction
    ("John Y Smith", ["John Y Smith"]),
    ("Maryam Y and Nikki W", ["Maryam Y", "Nikki W"]),
    # a suffix belongs to the name before its comma
    ("Martin Luther King, Jr. and Coretta Scott King",
     ["Martin Luther King, Jr.", "Coretta Scott King"]),
], ids=["initial-Y", "initial-Y-then-and", "comma-Jr"])
def test_initials_and_suffixes_are_not_separators(byline: str, expected: list[str]) -> None:
    assert [a.name for a in split_byline(byline)] == expected


@pytest.mark.parametrize("byline", ["ISO Steering Committee", "From SW", "From the ISO",
                                    "Obrero Socialista"])
def test_organisations_stay_whole(byline: str) -> None:
    assert split_byline(byline) == (Author(byline, AuthorKind.ORGANIZATION),)


def _page(body: str) -> bytes:
    return ("Nav\nSeries\nMy series\nAbout it.\n" + body).encode()


@pytest.mark.parametrize(("body", "field", "line"), [
    ("Ann\nTitle\nSummary\nFebruary 30, 2019\n", "date", 8),
    ("Ann\nTitle\nSummary\nMarhc 3, 2019\n", "date", 8),
    ("Ann\nTitle\nSummary\nMarch 3, 2019\nBob\nTitle 2\nSummary 2\n", "date", 9),
    ("Ann\nTitle\nSummary\nMarch 3, 2019\nBob\nTitle 2\nMarch 4, 2019\n", "summary", 9),
])
def test_malformed_pages_name_line_and_field(body: str, field: str, line: int) -> None:
    with pytest.raises(ImportError_) as info:
        parse_series_page(_page(body), SETTINGS, source="p")
    assert info.value.field == field
    assert info.value.line == line


def test_truncated_seed_page_is_refused() -> None:
    data = SEED_PAGE.read_bytes()
    cut = data[: data.index(b"March 22, 2019")]
    with pytest.raises(ImportError_, match="incomplete entry"):
        parse_series_page(cut, SETTINGS, source="p")


def test_invalid_utf8_names_the_line() -> None:
    data = _page("Ann\nTi\xfftle\nSummary\nMarch 3, 2019\n".encode("latin-1").decode("latin-1"))
    data = data.replace("ÿ".encode(), b"\xff")
    with pytest.raises(ImportError_, match="not valid UTF-8") as info:
        parse_series_page(data, SETTINGS, source="p")
    assert info.value.line == 6


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ImportError_, match="empty"):
        parse_file(path, None, SETTINGS)


def test_a_50_mb_file_is_refused_by_size_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    with path.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    small = ImportSettings(time_zone=NY, max_bytes=10 * 1024 * 1024)
    tracemalloc.start()
    with pytest.raises(ImportError_, match="more than the limit"):
        parse_file(path, None, small)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_json_duplicate_depth_and_huge_integer_errors(tmp_path: Path) -> None:
    with pytest.raises(ImportError_, match="nested deeper"):
        parse_json(b"[" * 100_000 + b"]" * 100_000, SETTINGS, source="j")
    with pytest.raises(ImportError_, match="digits"):
        parse_json(b'{"entries": [], "n": ' + b"9" * 100_000 + b"}", SETTINGS, source="j")
    with pytest.raises(ImportError_) as info:
        parse_json(b'[{"series": "s", "title": "T", "published": "2019-03-15", "colour": 1}]',
                   SETTINGS, source="j")
    assert info.value.field == "colour" and info.value.line == 1
    with pytest.raises(ImportError_) as info:
        parse_json(b'[{"series": "s", "title": "T", "published": "15/03/2019"}]', SETTINGS,
                   source="j")
    assert info.value.field == "published"


def test_csv_errors_and_formula_neutralising() -> None:
    with pytest.raises(ImportError_) as info:
        parse_csv(b'series,title,published\ns,T,2019-03-14\ns,"unterminated,2019-03-15\n'
                  b's,U,2019-03-16\n', SETTINGS, source="c")
    assert info.value.line == 3  # the row that opened the quote, not the end of the file
    # a row after a cell that spans two lines is named by the line it starts on
    with pytest.raises(ImportError_) as info:
        parse_csv(b'series,title,published\ns,"two\nlines",2019-03-14\ns,T,bad\n', SETTINGS,
                  source="c")
    assert info.value.line == 4 and info.value.field == "published"
    big = "x" * 200_000
    batch = parse_csv(f"series,title,published,content_html\ns,T,2019-03-15,{big}\n".encode(),
                      SETTINGS, source="c")
    assert batch.entries[0].entry.content_html == big
    entry = Entry(series="s", language="en", title="=HYPERLINK(\"x\")", summary="+1",
                  published=datetime(2019, 3, 15, tzinfo=UTC), authors=(Author("@me"),))
    exported = dump_csv([entry]).decode()
    for row in exported.splitlines()[1:]:
        for cell in row.split(","):
            assert not cell.strip('"').startswith(FORMULA_START)
    back = parse_csv(exported.encode(), SETTINGS, source="c").entries[0].entry
    assert back.title == entry.title and back.summary == "+1"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<rss version="2.0"><channel><title>&lol4;</title><item><title>&lol4;</title>
<pubDate>Fri, 15 Mar 2019 00:00:00 -0400</pubDate></item></channel></rss>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>&x;</title>
<pubDate>Fri, 15 Mar 2019 00:00:00 -0400</pubDate></item></channel></rss>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL])
def test_hostile_xml_is_refused_in_bounded_memory(payload: bytes) -> None:
    tracemalloc.start()
    with pytest.raises(ImportError_, match="refused") as info:
        parse_feed(payload, SETTINGS, source="f")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    assert "root:" not in str(info.value)


def test_rss_and_atom_files_import_with_their_ids() -> None:
    rss = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Old site</title><link>https://old.example/</link><language>es-ES</language>
<item><title>Uno &amp; dos</title><link>https://old.example/1</link>
<guid isPermaLink="false">urn:uuid:1</guid><dc:creator>Ana y Luis</dc:creator>
<description>&lt;p&gt;Hola &lt;b&gt;mundo&lt;/b&gt;&lt;/p&gt;</description>
<pubDate>Tue, 26 Mar 2019 09:00:00 -0400</pubDate></item></channel></rss>"""
    batch = parse_feed(rss, SETTINGS, source="f")
    e = batch.entries[0].entry
    assert (e.id, e.title, e.summary, e.language) == ("urn:uuid:1", "Uno & dos", "Hola mundo",
                                                      "es")
    assert [a.name for a in e.authors] == ["Ana", "Luis"]
    assert e.published == datetime(2019, 3, 26, 13, 0, tzinfo=UTC)
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
<updated>2019-03-27T00:00:00Z</updated>
<entry><title>T</title><id>tag:a.example,2019:1</id><link href="https://a.example/1"/>
<published>2019-03-26T00:00:00-04:00</published><updated>2019-03-27T00:00:00Z</updated>
<author><name>Helen Scott</name></author><summary>S</summary>
<content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>"""
    a = parse_feed(atom, SETTINGS, source="f", series_slug="moved").entries[0].entry
    assert (a.id, a.url, a.series, a.content_html) == ("tag:a.example,2019:1",
                                                       "https://a.example/1", "moved",
                                                       "<p>Body</p>")
    assert a.updated == datetime(2019, 3, 27, tzinfo=UTC)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_names = st.lists(st.builds(lambda n, k: Author(n, k), _text.map(clean_line).filter(bool),
                            st.sampled_from(list(AuthorKind))), max_size=3)
_entries = st.builds(
    lambda t, s, a, d, n: Entry(series="s", language="en", title=t, summary=s,
                                authors=tuple(a), published=d, updated=d,
                                id=f"tag:example.org,2019:{n}", url=f"https://e.example/{n}"),
    _text.map(clean_line).filter(bool), _text.map(clean_text).map(str.strip), _names,
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                 timezones=st.just(UTC)),
    st.integers(0, 10**6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_entries, max_size=5, unique_by=lambda e: e.id))
def test_json_and_csv_round_trip(entries: list[Entry]) -> None:
    series = [Series("s", {"en": SeriesText("S")})]
    back = [i.entry for i in parse_json(dump_json(series, entries), SETTINGS,
                                        source="j").entries]
    assert back == entries
    back_csv = [i.entry for i in parse_csv(dump_csv(entries), SETTINGS, source="c").entries]
    for a, b in zip(back_csv, entries, strict=True):
        assert (a.title, a.summary, a.published, a.id, a.url) == (b.title, b.summary,
                                                                  b.published, b.id, b.url)
        assert [x.name for x in a.authors] == [x.name for x in b.authors if x.name]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_parsers_raise_only_their_own_error(data: bytes) -> None:
    for parse in (parse_series_page, parse_json, parse_csv, parse_feed):
        try:
            batch = parse(data, SETTINGS, source="fuzz")
        except ImportError_ as exc:
            assert str(exc).startswith("fuzz")  # every error names the file
        else:
            assert all(i.entry.published.tzinfo is not None for i in batch.entries)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["Series", "My series", "Ann", "Title", "Summary",
                                 "March 3, 2019", "", "Previously published by x",
                                 "32 de marzo de 2019", "Feb 29, 2019"]), max_size=30))
def test_page_parser_fuzz_with_page_like_lines(lines: list[str]) -> None:
    try:
        batch = parse_series_page("\n".join(lines).encode(), SETTINGS, source="fuzz")
    except ImportError_ as exc:
        assert str(exc).startswith("fuzz")
    else:
        assert batch.entries and all(i.entry.title for i in batch.entries)


@pytest.mark.parametrize("fmt, document", [
    ("feed", b'<?xml version="1.0" encoding="u-tf-8"?>\n'
             b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>'),
    ("feed", b'<?xml version="1.0" encoding="no-such-codec"?>\n'
            b'<rss version="2.0"><channel><title>t</title></channel></rss>'),
])
def test_an_xml_declaration_naming_an_unknown_encoding_is_an_import_error(
        fmt: str, document: bytes) -> None:
    """Found by the fuzzing test: ElementTree raised LookupError, not our error."""
    from seriesfeed.importers.parse import parse_bytes

    with pytest.raises(ImportError_, match="encoding that does not exist") as info:
        parse_bytes(document, fmt, SETTINGS, source="feed.xml")
    assert info.value.path == "feed.xml"


def test_an_imported_summary_is_text_without_the_scripts_and_with_its_word_breaks() -> None:
    """One html_to_text for mail and imports: a script's code is not a summary's text, and
    a line break or a paragraph end between two words keeps them two words."""
    import json

    from seriesfeed.importers.jsonfeed import parse_json_feed

    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [{
        "id": "1", "title": "Uno<br>dos", "date_published": "2024-01-01T00:00:00Z",
        "summary": "<p>One &amp; a half</p><p>Two</p><script>alert(1)</script>\n\n x < y"}]}
    entry = parse_json_feed(json.dumps(doc).encode(), SETTINGS, source="f").entries[0].entry
    assert entry.title == "Uno dos"
    assert entry.summary == "One & a half Two x < y"
