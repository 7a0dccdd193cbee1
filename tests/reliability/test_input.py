"""Bad-input tests B1-B6 of ../shared/RELIABILITY.md."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import gc
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from seriesfeed import actions
from seriesfeed.config import load_config
from seriesfeed.errors import ImportError_
from seriesfeed.importers import ImportSettings
from seriesfeed.importers.parse import parse_file
from seriesfeed.models import Frequency
from seriesfeed.store import open_store
from seriesfeed.web import create_app
from tests.conftest import EXAMPLE_JSON, SEED_PAGE
from tests.harness.audit import audited
from tests.harness.fault_smtp import FaultServer

SETTINGS = ImportSettings(time_zone=ZoneInfo("America/New_York"), default_language="en",
                          language_markers={"es": ("Obrero Socialista",)},
                          organizations=("From SW",))
RSS_HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n'


def _rss(items: int, *, encoding: str = "utf-8") -> bytes:
    body = "".join(f"<item><title>Item {i} \u00e9</title><link>https://e.example/{i}</link>"
                   f"<guid>https://e.example/{i}</guid>"
                   f"<pubDate>Tue, 26 Mar 2019 10:00:00 +0000</pubDate></item>"
                   for i in range(items))
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
            f"<title>T</title><link>https://e.example/</link><description>D</description>"
            f"{body}</channel></rss>")
    return text.encode(encoding)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on 127.0.0.1 that records every connection (none may arrive)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.1)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = sock.accept()
                seen.append(str(addr))
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1]), seen
    stop.set()
    thread.join(timeout=2)
    sock.close()


def _hazards(port: int) -> dict[str, bytes]:
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    return {
        "billion laughs": RSS_HEAD + (f'<!DOCTYPE rss [<!ENTITY l0 "lol">{laughs}]>'
                                      '<rss><channel><title>&l9;</title></channel></rss>'
                                      ).encode(),
        "quadratic blowup": RSS_HEAD + (f'<!DOCTYPE rss [<!ENTITY a "{"x" * 80_000}">]>'
                                        '<rss><channel><title>' + "&a;" * 20_000 +
                                        '</title></channel></rss>').encode(),
        "external entity (file)": RSS_HEAD + b'<!DOCTYPE rss [<!ENTITY x SYSTEM '
        b'"file:///etc/passwd">]><rss><channel><title>&x;</title></channel></rss>',
        "external entity (127.0.0.1)": RSS_HEAD + (
            f'<!DOCTYPE rss [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>'
            '<rss><channel><title>&x;</title></channel></rss>').encode(),
        "external DTD": RSS_HEAD + (
            f'<!DOCTYPE rss SYSTEM "http://127.0.0.1:{port}/rss.dtd">'
            '<rss><channel><title>t</title></channel></rss>').encode(),
        "parameter entity": RSS_HEAD + (
            f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p">%p;]>'
            '<rss/>').encode(),
        "50 MB": RSS_HEAD + b"<rss><channel><title>" + b"x" * (50 * 1024 * 1024) +
        b"</title></channel></rss>",
        "100k items": _rss(100_000),
        "deep nesting": RSS_HEAD + b"<rss><channel>" + b"<a>" * 100_000 + b"</a>" * 100_000 +
        b"</channel></rss>",
        "UTF-16": _rss(3, encoding="utf-16"),
        "XInclude": RSS_HEAD + b'<rss xmlns:xi="http://www.w3.org/2001/XInclude"><channel>'
        b'<title>t</title><item><title>i</title><pubDate>Tue, 26 Mar 2019 10:00:00 +0000'
        b'</pubDate><description><xi:include href="file:///etc/passwd" parse="text"/>'
        b'</description></item></channel></rss>',
    }


@pytest.mark.serial  # asserts a time bound: run alone (./dev test)
@pytest.mark.catalogue("B2")
def test_xml_hazards_are_refused_fast_in_bounded_memory(
        tmp_path: Path, listener: tuple[int, list[str]], figures: Callable[..., None]) -> None:
    port, connections = listener
    warm = tmp_path / "warm.xml"
    warm.write_bytes(_rss(2))
    parse_file(warm, None, SETTINGS)  # lazy imports happen before the audit is armed
    results: dict[str, str] = {}
    worst_s, worst_mb = 0.0, 0.0
    for name, payload in _hazards(port).items():
        path = tmp_path / f"hazard-{len(results)}.xml"
        path.write_bytes(payload)
        del payload
        gc.collect()
        started = time.perf_counter()
        with audited(path) as audit:
            try:
                batch = parse_file(path, None, SETTINGS)
                outcome = f"parsed ({len(batch.entries)} entries)"
            except ImportError_ as exc:
                assert str(exc).startswith(str(path)), exc
                outcome = "refused"
        seconds = time.perf_counter() - started
        gc.collect()
        tracemalloc.start()  # a second pass for memory: tracing slows the parse down
        with contextlib.suppress(ImportError_):
            parse_file(path, None, SETTINGS)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert audit.opens == [], (name, audit.opens)
        assert audit.connects == [], (name, audit.connects)
        assert seconds < 1.0, (name, seconds)
        assert peak < 50 * 1024 * 1024, (name, peak)
        if name == "UTF-16":
            assert outcome == "parsed (3 entries)"
            assert batch.entries[0].entry.title == "Item 0 \u00e9"
        elif name == "XInclude":
            assert "root:" not in batch.entries[0].entry.summary
        else:
            assert outcome == "refused", name
        results[name] = outcome
        worst_s, worst_mb = max(worst_s, seconds), max(worst_mb, peak / 2**20)
    time.sleep(0.2)
    assert connections == []
    figures(documents=len(results), refused=sum(v == "refused" for v in results.values()),
            **{"slowest s": round(worst_s, 3), "peak MB": round(worst_mb, 1),
               "file opens": 0, "connects": 0})


def _samples() -> dict[str, tuple[Callable[..., object], bytes]]:
    from seriesfeed.importers.csvfmt import parse_csv
    from seriesfeed.importers.feedfile import parse_feed
    from seriesfeed.importers.jsonfmt import parse_json
    from seriesfeed.importers.seriespage import parse_series_page

    csv = (b"series,language,title,summary,authors,published,url,id\n"
           b"s,en,Title,Summary,Ann and Bob,2019-03-26T10:00:00-04:00,https://e.example/1,"
           b"tag:e.example,2019:1\n")
    atom = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            b"<title>T</title><id>tag:e.example,2019:f</id><updated>2019-03-26T10:00:00Z"
            b"</updated><entry><title>E</title><id>tag:e.example,2019:1</id><updated>"
            b"2019-03-26T10:00:00Z</updated><author><name>Ann</name></author><summary>S"
            b"</summary></entry></feed>")
    return {"page": (parse_series_page, SEED_PAGE.read_bytes()),
            "json": (parse_json, EXAMPLE_JSON.read_bytes()), "csv": (parse_csv, csv),
            "rss": (parse_feed, _rss(3)), "atom": (parse_feed, atom)}


SAMPLES = _samples()
B1_STATS = {"cases": 0, "errors": 0, "slowest": 0.0}


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(SAMPLES)),
       st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 64), st.binary(max_size=12)),
                min_size=1, max_size=6))
def _fuzz_one(kind: str, edits: list[tuple[int, int, bytes]]) -> None:
    parse, sample = SAMPLES[kind]
    data = bytearray(sample)
    for pos, cut, insert in edits:
        at = pos % (len(data) + 1)
        data[at:at + cut] = insert
    started = time.perf_counter()
    try:
        parse(bytes(data), SETTINGS, source="fuzz")
    except ImportError_ as exc:
        assert str(exc).startswith("fuzz"), exc  # names the file, then line or field
        B1_STATS["errors"] += 1
    took = time.perf_counter() - started
    assert took < 1.0, (kind, took)
    B1_STATS["cases"] += 1
    B1_STATS["slowest"] = max(B1_STATS["slowest"], took)


@pytest.mark.catalogue("B1")
def test_importers_under_fuzzing_raise_only_their_own_errors(
        store_for_roundtrip: tuple[Path, Path], figures: Callable[..., None]) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _fuzz_one()
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert growth_mb < 200
    assert B1_STATS["cases"] >= 100
    first, second = store_for_roundtrip
    assert first.read_bytes() == second.read_bytes()  # import(export(x)) == x, byte for byte
    figures(cases=B1_STATS["cases"], **{"our errors": B1_STATS["errors"],
                                        "other exceptions": 0,
                                        "slowest ms": round(B1_STATS["slowest"] * 1000, 1),
                                        "memory growth MB": round(growth_mb, 1),
                                        "export round trip": "identical"})


@pytest.fixture
def store_for_roundtrip(make_config: Callable[..., Path], tmp_path: Path,
                        run_cli: Callable[..., object]) -> tuple[Path, Path]:
    """Seed page -> store -> JSON export -> a second store -> JSON export again."""
    outs = []
    for n in range(2):
        cfg = make_config(database={"url": f"sqlite:///{tmp_path / f'rt{n}.sqlite3'}"})
        source = SEED_PAGE if n == 0 else outs[0]
        result = run_cli("--config", cfg, "import", source)
        assert result.code == 0, result
        out = tmp_path / f"export{n}.json"
        result = run_cli("--config", cfg, "entries", "export", "--format", "json",
                         "--out", out)
        assert result.code == 0, result
        outs.append(out)
    return outs[0], outs[1]


HOSTILE_CHARS = ("".join(chr(c) for c in range(0x20) if c not in (9, 10, 13)) + "\x7f" +
                 "".join(chr(c) for c in range(0x80, 0xA0)) + "\ufffe\uffff\ufeff\u202e\u202d"
                 "\u2066\u2069\u200f\u2028\u2029")


@pytest.mark.catalogue("B3")
def test_control_characters_never_break_a_feed(
        make_config: Callable[..., Path], tmp_path: Path, figures: Callable[..., None]) -> None:
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'b3.sqlite3'}"}), env={})
    nasty = f"A{HOSTILE_CHARS}\ud800Z\udfff<b>x</b>&amp;"
    doc = {"format": "seriesfeed/1",
           "series": [{"slug": "s", "texts": {"en": {"title": f"Series {nasty}"},
                                              "es": {"title": f"Serie {nasty}"}}}],
           "entries": [{"series": "s", "language": lang, "title": f"T{i} {nasty}",
                        "summary": f"S {nasty}", "authors": [{"name": f"Ann {nasty}"}],
                        "published": f"2019-03-2{i}T10:00:00-04:00",
                        "url": f"https://e.example/{lang}/{i}"}
                       for i, lang in enumerate(["en", "es", "en"])]}
    path = tmp_path / "nasty.json"
    path.write_bytes(json.dumps(doc).encode())
    store = open_store(config.database.url, config.base_dir)
    try:
        report = actions.import_entries(store, config, path)
        assert report is not None
        client = TestClient(create_app(config, store), base_url=config.public_url)
        from seriesfeed.actions import plan_feeds

        documents = plan_feeds(config, store)
        checked = 0
        for document in documents:
            reply = client.get(document.path)
            assert reply.status_code == 200, document.path
            if document.path.endswith((".xml", "atom.xml", "rss.xml")):
                parsed = feedparser.parse(io_bytes(reply.content))
                assert not parsed.bozo, (document.path, parsed.bozo_exception)
                for entry in parsed.entries:
                    text = entry.title + entry.get("summary", "")
                    assert not any(c in text for c in "\x00\x0b\x1b\ufffe\uffff\ud800")
                checked += 1
            elif document.path.endswith(".json"):
                json.loads(reply.content)
                checked += 1
        assert checked >= 6
    finally:
        store.close()
    figures(characters=len(HOSTILE_CHARS) + 2, **{"documents served 200": len(documents),
                                                  "parsed without bozo": checked})


def io_bytes(data: bytes) -> object:
    import io

    return io.BytesIO(data)


B5_TITLE = "Serie " + "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 " * 50 + "\u00e9" * 150


@pytest.mark.catalogue("B5")
@pytest.mark.parametrize("mode", ["strict", "no_8bitmime", "no_smtputf8"])
def test_hostile_content_passes_strict_servers_and_decodes_back(
        make_config: Callable[..., Path], tmp_path: Path, figures: Callable[..., None],
        mode: str) -> None:
    smtp = FaultServer.start(tmp_path / "smtp.jsonl", strict=True,
                             no_8bitmime=mode == "no_8bitmime",
                             no_smtputf8=mode == "no_smtputf8")
    config = load_config(make_config(
        database={"url": f"sqlite:///{tmp_path / 'b5.sqlite3'}"},
        smtp={"host": smtp.host, "port": smtp.port, "security": "none"}), env={})
    long_url = "https://e.example/" + "a" * 10_000
    summary = ("first\n.\nsecond\n.starts with a dot\n..two dots\nbare\rCR and NUL\x00 end "
               "\u05e2\u05d1\u05e8\u05d9\u05ea \u0627\u0644\u0639\u0631\u0628\u064a\u0629 "
               "\u202eRTL override\u202c " + "long " * 400)
    doc = {"format": "seriesfeed/1",
           "series": [{"slug": "s", "texts": {"en": {"title": B5_TITLE[:500]}}}],
           "entries": [{"series": "s", "language": "en", "title": ".\r\n.\r\nQUIT",
                        "summary": summary, "published": "2019-03-26T10:00:00-04:00",
                        "url": long_url}]}
    path = tmp_path / "b5.json"
    path.write_bytes(json.dumps(doc).encode())
    store = open_store(config.database.url, config.base_dir)
    try:
        actions.subscribers.add_subscriber(store, config, "b5@example.org", confirmed=True,
                                     frequency="daily")
        with store.write() as conn:
            from seriesfeed.store.tables import subscribers

            conn.execute(subscribers.update().values(last_seq=0))
        actions.import_entries(store, config, path)
        from seriesfeed.store import entries as eq

        with store.read() as conn:
            stored = eq.list_entries(conn)[0]
        asyncio.run(actions.send_digests(store, config, frequency=Frequency.DAILY,
                                         scheduled=False))
        got = smtp.handler.wait_for(1)
        assert len(got) == 1, smtp.handler.events
        raw = got[0].data
        assert all(b < 128 for b in raw) or mode == "strict"
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
        flat = " ".join(text.split())
        assert " ".join(stored.summary.split()) in flat
        assert stored.title in text
        assert long_url in text and long_url in html
        assert str(msg["Subject"]).startswith(B5_TITLE[:500].strip()[:200])
    finally:
        store.close()
        smtp.stop()
    figures(mode=mode, accepted="100%", **{"subject chars": len(str(msg["Subject"])),
                                           "longest line": max(map(len, raw.split(b"\r\n")))})


B4_CASES: dict[str, tuple[str, str, bytes]] = {
    # name: (command, suffix, content)
    "CSV 200 KB field": ("import", ".csv",
                         b"series,language,title,summary,published\n"
                         b"s,en,T," + b"x" * 200_000 + b",2019-03-26T10:00:00-04:00\n"),
    "CSV unterminated quote": ("import", ".csv",
                               b'series,language,title,summary,published\ns,en,"T,S,2019\n'),
    "JSON 100,000 deep": ("import", ".json", b"[" * 100_000 + b"]" * 100_000),
    "JSON 100,000-digit integer": ("import", ".json",
                                   b'{"format": "seriesfeed/1", "series": [], "entries": '
                                   b'[{"series": "s", "language": "en", "title": "t", '
                                   b'"published": ' + b"9" * 100_000 + b"}]}"),
    "JSON not UTF-8": ("import", ".json", b'{"format": "\xff\xfe"}'),
    "subscribers 200 KB field": ("subscribers import", ".csv",
                                 b"email,name\nx@example.org," + b"n" * 200_000 + b"\n"),
    "subscribers unterminated quote": ("subscribers import", ".csv",
                                       b'email,name\nx@example.org,"Ann\n'),
}


@pytest.mark.catalogue("B4")
def test_csv_and_json_edges_are_clean_errors_and_exports_are_formula_safe(
        make_config: Callable[..., Path], tmp_path: Path, figures: Callable[..., None]) -> None:
    import subprocess
    import sys

    cfg = make_config(database={"url": f"sqlite:///{tmp_path / 'b4.sqlite3'}"})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "seriesfeed", "--config", str(cfg), *args],
                              capture_output=True, text=True, timeout=60)

    tracebacks = 0
    for name, (command, suffix, content) in B4_CASES.items():
        path = tmp_path / f"b4-{len(name)}{suffix}"
        path.write_bytes(content)
        result = cli(*command.split(), str(path))
        tracebacks += "Traceback" in result.stderr
        assert result.returncode != 0, name
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, \
            (name, result.stderr[:500])
        assert "line" in result.stderr or ":" in result.stderr.split(str(path), 1)[-1][:12], \
            (name, result.stderr)
    # exports: no cell starts with a formula character
    formulas = ["=HYPERLINK(\"https://evil.example\")", "+1+1", "-2+3", "@SUM(A1)", "\tx",
                "\rx"]
    doc = {"format": "seriesfeed/1",
           "series": [{"slug": "s", "texts": {"en": {"title": "=S"}}}],
           "entries": [{"series": "s", "language": "en", "title": f,
                        "summary": f, "authors": [{"name": f.strip() or "x"}],
                        "published": f"2019-03-2{i}T10:00:00-04:00",
                        "url": f"https://e.example/{i}"} for i, f in enumerate(formulas)]}
    source = tmp_path / "formulas.json"
    source.write_text(json.dumps(doc), encoding="utf-8")
    assert cli("import", str(source)).returncode == 0
    people = tmp_path / "people.csv"
    import csv as csvmod
    import io as iomod

    buffer = iomod.StringIO()
    writer = csvmod.writer(buffer)
    writer.writerow(["email", "name"])
    writer.writerows([f"p{i}@example.org", f.strip() or "x"] for i, f in enumerate(formulas))
    people.write_text(buffer.getvalue(), encoding="utf-8")
    assert cli("subscribers", "import", str(people)).returncode == 0
    exported = cli("entries", "export", "--format", "csv").stdout + \
        cli("subscribers", "export").stdout
    cells = [c for row in csvmod.reader(iomod.StringIO(exported)) for c in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert cells and dangerous == []
    figures(cases=len(B4_CASES), tracebacks=tracebacks,
            **{"exported cells": len(cells), "formula cells": len(dangerous)})
