"""Subscribers written by other people, through the whole path (RELIABILITY invariant 19).

Names come from Faker's locales (Spanish, Arabic, Chinese, Hindi, Greek) and from hostile
spellings (quotes, commas, CR/LF, an RFC 2047 encoded CRLF); addresses are generated
(internationalised domains and local parts, the longest legal lengths) or collected from
email-validator's own test tables (its sdist's ``tests/test_syntax.py``, read with ``ast``);
languages are English and Spanish. Each example is a CSV batch: ``subscribers import`` then
``digest send`` to aiosmtpd with or without SMTPUTF8. The oracle for an address is
email-validator itself, called with seriesfeed's documented options (no deliverability
check, no quoted local parts, no display names; surrounding blanks in a CSV cell are
trimmed): a valid row is delivered exactly once, to itself only, or fails alone with its
reason (an internationalised local part without SMTPUTF8); an invalid row is refused with
its line and field and nothing of the batch is stored.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.utils import getaddresses
from functools import cache
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from faker import Faker
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from seriesfeed import actions
from seriesfeed.cli import main
from seriesfeed.config import Config, load_config
from seriesfeed.models import Entry
from seriesfeed.store import open_store
from seriesfeed.store.tables import outbox
from tests.conftest import SEED_PAGE
from tests.harness.corpora import corpus_root
from tests.harness.fault_smtp import FaultServer
from tests.harness.figures import tier

SLUG = "reflections-on-the-iso-crisis"
LOCALES = ("es_ES", "ar_SA", "zh_CN", "hi_IN", "el_GR")
# headers a digest carries; anything else (Bcc, Reply-To, Cc ...) came from a name
DIGEST_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "list-id",
                  "list-unsubscribe", "list-unsubscribe-post", "content-type",
                  "content-language", "feedback-id", "auto-submitted", "precedence",
                  "x-auto-response-suppress", "dkim-signature", "return-path"}
HOSTILE_NAMES = (
    "=?UTF-8?Q?=0D=0AReply-To:_attacker@evil.example=0D=0A?=",
    "Ann\r\nBcc: victim@evil.example",
    "Ann\nCc: victim@evil.example",
    '"Quoted, Name" <victim@evil.example>',
    "Smith, John",
    "O'Brien-Núñez Jr.",
    "a@b.example",
    "\u202eevil\u2028Bcc: x@evil.example",
    "=?utf-8?b?QWxpY2UNCkJjYzogdmljdGltQGV2aWwuZXhhbXBsZQ==?=",
)
SEPARATORS = ('"', ", ", "\r\n", "\n", "\r", " =?UTF-8?Q?=0D=0ABcc:_v@evil.example?= ", "'",
              " <x@evil.example> ", "\u2028", "\t")
DOMAINS = ("example.org", "exämple.org", "例え.jp", "παράδειγμα.gr", "उदाहरण.भारत",
           "مثال.السعودية", "bücher.example.com", "xn--bcher-kva.example.net", "Example.ORG")
UTF8_LOCALS = ("josé", "用户", "δοκιμή", "अजय", "مستخدم", "ñandú", "zoë.ω", "Ärger")


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def _faker_name(locale: str, seed: int) -> str:
    fake = _faker(locale)
    fake.seed_instance(seed)
    return str(fake.name())


def _faker_local(locale: str, seed: int) -> str:
    """A local part made of a Faker first name in its own script (often not ASCII)."""
    return _faker_name(locale, seed).split()[0].lower()


@cache
def collected_addresses() -> tuple[tuple[str, str | None], ...]:
    """email-validator's own examples: every address its syntax tests' parametrize tables
    hold, with the normalised form the table documents (None where it documents none).
    Strings that cannot be written to a UTF-8 file (lone surrogates) are left out."""
    source = corpus_root("email-validator") / "tests" / "test_syntax.py"
    tree = ast.parse(source.read_text("utf-8"))
    found: dict[str, str | None] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for deco in fn.decorator_list:
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "parametrize" and len(deco.args) >= 2
                    and isinstance(deco.args[1], ast.List)):
                continue
            for case in deco.args[1].elts:
                first = case.elts[0] if isinstance(case, ast.Tuple | ast.List) else case
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                inputs = [first.value]
                if fn.name == "test_email_unsafe_character":  # a fragment, not an address
                    inputs = [f"{first.value}@example.org", f"test@{first.value}.org"]
                normalised = None
                if isinstance(case, ast.Tuple) and len(case.elts) > 1 and \
                        isinstance(case.elts[1], ast.Call):
                    kw = {k.arg: k.value for k in case.elts[1].keywords}
                    local, domain = kw.get("local_part"), kw.get("ascii_domain")
                    if isinstance(local, ast.Constant) and isinstance(domain, ast.Constant):
                        normalised = f"{local.value}@{domain.value}"
                for raw in inputs:
                    try:
                        raw.encode("utf-8")
                    except UnicodeEncodeError:
                        continue
                    found[raw] = normalised
    assert len(found) > 80, "email-validator's tables were not found where expected"
    return tuple(found.items())


def expected_address(raw: str) -> str | None:
    """What seriesfeed should store for this cell, by email-validator with seriesfeed's
    documented options; None when the row must be refused."""
    try:
        valid = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{valid.local_part}@{valid.ascii_domain}"


def _longest(seed: int) -> str:
    """A 64-octet local part at a domain that brings the address to 254 octets."""
    local = f"l{seed:08d}".ljust(64, "x")
    labels = ["a" * 63, "b" * 63, "c" * 57]
    return f"{local}@{'.'.join(labels)}.org"[:254]


names = st.one_of(
    st.builds(_faker_name, st.sampled_from(LOCALES), st.integers(0, 2**31)),
    st.sampled_from(HOSTILE_NAMES),
    st.builds(lambda a, sep, b: f"{a}{sep}{b}",
              st.builds(_faker_name, st.sampled_from(LOCALES), st.integers(0, 2**31)),
              st.sampled_from(SEPARATORS),
              st.builds(_faker_name, st.sampled_from(LOCALES), st.integers(0, 2**31))),
    st.just(""),
).map(lambda n: n[:90])
locals_ = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True),
    st.sampled_from(UTF8_LOCALS),
    st.builds(_faker_local, st.sampled_from(LOCALES), st.integers(0, 2**31)),
)
addresses = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", locals_, st.sampled_from(DOMAINS)),
    st.builds(_longest, st.integers(0, 10**6)),
)


@dataclass
class Row:
    email: str  # as written in the CSV cell
    name: str
    language: str
    stored: str | None  # the oracle's address; None: the row must be refused
    documented: str | None = None  # email-validator's table's normalised form, if any

    def __repr__(self) -> str:  # short: a failing batch is printed whole
        return f"Row({self.email[:80]!r}, {self.name!r}, {self.language})"


def _rows(draw: st.DrawFn) -> list[Row]:
    collected = collected_addresses()
    picks = draw(st.lists(st.tuples(
        st.one_of(addresses.map(lambda a: (a, None)), st.sampled_from(collected)),
        names, st.sampled_from(("en", "es"))), min_size=4, max_size=30))
    return [Row(raw, name, lang, expected_address(raw), documented)
            for (raw, documented), name, lang in picks]


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Row], Row | None, int, bool]:
    """Valid rows (one per mailbox), maybe one invalid row and where it goes, and whether
    the relay offers SMTPUTF8."""
    rows = _rows(draw)
    valid: dict[str, Row] = {}
    invalid = [r for r in rows if r.stored is None]
    for row in rows:
        if row.stored is not None:
            valid.setdefault(row.stored.lower(), row)
    bad = draw(st.sampled_from(invalid)) if invalid and draw(st.booleans()) else None
    at = draw(st.integers(0, len(valid)))
    return list(valid.values()), bad, at, draw(st.booleans())


def _csv(rows: list[Row]) -> tuple[str, list[int]]:
    """The CSV text and each row's first physical line (a name may hold line breaks)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "name", "language", "frequency", "status"])
    starts = []
    for row in rows:
        starts.append(len(io.StringIO(out.getvalue(), newline="").readlines()) + 1)
        writer.writerow([row.email, row.name, row.language, "daily", "confirmed"])
    return out.getvalue(), starts


def _cli(config_path: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config_path), *args])
    return code, out.getvalue(), err.getvalue()


SAFE_PUNCT = " .'-_"


def _safe_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN" or ch in SAFE_PUNCT


def check_display_name(shown: str, source: str) -> None:
    """The name a header decodes to is the source name, or a safe reduction of it, or
    absent: never a control, an encoded word, a quote, a comma or an address."""
    if not shown:
        return
    assert all(_safe_char(ch) for ch in shown), f"unsafe display name {shown!r}"
    assert "=?" not in shown and len(shown) <= 64, shown
    plain = " ".join(unicodedata.normalize("NFKC", source).split())
    for word in shown.split():
        assert word in plain, f"{word!r} of the display name is not in the name {source!r}"
    if all(_safe_char(ch) for ch in plain) and len(plain) <= 64 and \
            plain == plain.strip(SAFE_PUNCT):
        assert shown == plain, f"the name {source!r} reached the header as {shown!r}"


def _headers(data: bytes) -> list[tuple[str, str]]:
    """The top-level header fields as sent (UTF-8 allowed: RFC 6532), unfolded; a line that
    is not a field (a bare CR or LF, a smuggled line) fails here."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    fields = []
    for line in re.sub(r"\r\n(?=[ \t])", "", head).split("\r\n"):
        name, colon, value = line.partition(":")
        assert colon and re.fullmatch(r"[!-9;-~]+", name), f"not a header field: {line!r}"
        fields.append((name, value.strip()))
    return fields


def _header_name(raw_to: str) -> tuple[str, str]:
    """(display name, address) of a To header, decoded by RFC 2047 itself (the standard
    library's parser can read a space into a name its folder split into encoded words)."""
    decoded = str(make_header(decode_header(raw_to)))
    parsed = getaddresses([decoded])
    assert len(parsed) == 1, f"To names {len(parsed)} addresses: {decoded!r}"
    return parsed[0]


class World(tuple[dict[bool, Path], Path, dict[bool, FaultServer]]):
    """Configs, template store and relays; a short repr (the relays hold every message)."""

    def __repr__(self) -> str:
        return "World(...)"


@pytest.fixture
def world(make_config: Callable[..., Path], tmp_path: Path,
          fault: Callable[..., FaultServer]) -> Iterator[World]:
    """Two configs over one store file, one naming a relay that offers SMTPUTF8 and one a
    relay that does not, and a template store with the seed series, copied fresh for each
    example."""
    servers = {True: fault(), False: fault(no_smtputf8=True)}
    db = tmp_path / "corpus.sqlite3"
    sites = {utf8: make_config(database={"url": f"sqlite:///{db}"},
                               smtp={"host": "127.0.0.1", "port": server.port,
                                     "security": "none", "connections": 2, "timeout": 10},
                               mail={"retry_seconds": 0.05, "max_attempts": 3},
                               web={"host": "127.0.0.1", "port": 8080,
                                    "base_url": "https://feeds.example.org"},
                               security={"secret_key": "c" * 32})
             for utf8, server in servers.items()}
    config = load_config(sites[True], env={})
    store = open_store(config.database.url, config.base_dir)
    actions.import_entries(store, config, SEED_PAGE)
    store.close()
    template = tmp_path / "template.sqlite3"
    shutil.copy(db, template)
    yield World((sites, template, servers))


def _fresh(site: Path, template: Path) -> Config:
    config = load_config(site, env={})
    db = Path(config.database.url.removeprefix("sqlite:///"))
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        extra.unlink(missing_ok=True)
    shutil.copy(template, db)
    return config


def _news(config: Config) -> None:
    store = open_store(config.database.url, config.base_dir)
    try:
        for lang in ("en", "es"):
            actions.add_entry(store, config, Entry(
                series=SLUG, language=lang, title=f"Corpus news {lang}", summary="New.",
                published=datetime.now(UTC)))
    finally:
        store.close()


def _outbox(config: Config) -> dict[str, tuple[str, str]]:
    store = open_store(config.database.url, config.base_dir)
    try:
        with store.read() as conn:
            return {str(r): (str(s), str(e or "")) for r, s, e in conn.execute(
                select(outbox.c.recipient, outbox.c.state, outbox.c.last_error))}
    finally:
        store.close()


FIGURES: Counter[str] = Counter()


def _phases() -> tuple[Phase, ...]:
    """Shrinking a batch costs minutes of imports and sends: the fast tier reports the
    failing batch as drawn, the full tier shrinks it."""
    return tuple(Phase) if tier(0, 1) else (Phase.explicit, Phase.reuse, Phase.generate)


def _deliverable(valid: list[Row], smtputf8: bool) -> int:
    return sum(1 for r in valid if r.stored is not None and
               (smtputf8 or r.stored.split("@")[0].isascii()))


def run_batch(world: World, batch: tuple[list[Row], Row | None, int, bool],
              work: Path) -> None:
    sites, template, servers = world
    valid, bad, at, smtputf8 = batch
    server, site = servers[smtputf8], sites[smtputf8]
    server.handler.messages.clear()
    server.handler.log_path.unlink(missing_ok=True)
    config = _fresh(site, template)
    FIGURES["rows"] += len(valid)
    if bad is not None:
        FIGURES["invalid rows"] += 1
        with_bad = [*valid[:at], bad, *valid[at:]]
        text, starts = _csv(with_bad)
        path = work / "with-bad.csv"
        path.write_text(text, "utf-8", newline="")
        code, out, err = _cli(site, "subscribers", "import", str(path))
        assert code != 0, f"{bad.email!r} was accepted: {out}"
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert f"{path}:{starts[at]}, field 'email'" in err, (bad.email, starts[at], err)
        code, out, _ = _cli(site, "subscribers", "list", "--json")
        assert code == 0 and json.loads(out) == [], "a refused import stored rows"
    text, _starts = _csv(valid)
    path = work / "batch.csv"
    path.write_text(text, "utf-8", newline="")
    code, out, err = _cli(site, "subscribers", "import", str(path))
    assert code == 0, (err, [r.email for r in valid])
    code, out, _ = _cli(site, "subscribers", "list", "--json")
    listed = {s["email"]: s for s in json.loads(out)}
    assert set(listed) == {r.stored for r in valid}
    for row in valid:
        if row.documented is not None:  # the table's own normalised form
            assert row.stored == row.documented
        assert listed[row.stored]["language"] == row.language
    _news(config)
    code, out, err = _cli(site, "digest", "send", "--frequency", "daily")
    assert code == 0 and "Traceback" not in err, (out, err)
    assert "paus" not in (out + err).lower(), (out, err)
    rows = _outbox(config)
    delivered = Counter(r for d in server.handler.deliveries() for r in d.recipients)
    for row in valid:
        assert row.stored is not None
        state, error = rows[row.stored]
        needs_utf8 = not row.stored.split("@")[0].isascii()
        if needs_utf8 and not smtputf8:
            assert (state, delivered[row.stored]) == ("failed", 0), (row, state, error)
            assert "SMTPUTF8" in error, error
            FIGURES["failed alone (no SMTPUTF8)"] += 1
        else:
            assert state == "sent" and delivered[row.stored] == 1, (row, state, error)
            FIGURES["delivered"] += 1
    assert sum(delivered.values()) == _deliverable(valid, smtputf8)
    by_recipient = {m.recipients[0]: m for m in server.handler.messages}
    for message in server.handler.messages:
        assert len(message.recipients) == 1
    for row in valid:
        assert row.stored is not None
        message = by_recipient.get(row.stored)
        if message is None:
            continue
        headers = _headers(message.data)
        keys = [k.lower() for k, _ in headers]
        assert set(keys) <= DIGEST_HEADERS, set(keys) - DIGEST_HEADERS
        assert Counter(keys)["to"] == 1 and "cc" not in keys and "bcc" not in keys
        shown, address = _header_name(next(v for k, v in headers if k.lower() == "to"))
        assert address == row.stored, (address, row.stored)
        check_display_name(shown, row.name.strip())
        FIGURES["names shown" if shown else "names left out"] += 1


@settings(max_examples=tier(25, 200), deadline=None, phases=_phases(),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=batches())
def test_generated_and_collected_subscribers_through_import_and_send(
        world: World, tmp_path: Path, batch: tuple[list[Row], Row | None, int, bool]) -> None:
    run_batch(world, batch, tmp_path)


@pytest.mark.parametrize("name", ["कम्बोज गुप्ता", "राजेश कुमार", "محمّد", "Zoë Ångström"])
def test_a_name_written_with_combining_marks_reaches_the_header_whole(name: str) -> None:
    """Devanagari vowel signs and Arabic harakat are marks (Unicode category M), not
    punctuation: the corpus found Hindi names cut into letters ('कम्बोज' -> 'कम ब ज')."""
    from seriesfeed.emails import format_recipient

    shown, address = _header_name(format_recipient("reader@example.org", name))
    assert (shown, address) == (unicodedata.normalize("NFKC", name), "reader@example.org")


def test_the_corpus_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """What the generated runs in this process covered (printed with -s); the tables were
    read (the ast walk found email-validator's cases)."""
    collected = collected_addresses()
    refused = sum(1 for raw, _ in collected if expected_address(raw) is None)
    with capsys.disabled():
        print(f"\ncorpus: {len(collected)} collected addresses ({refused} to refuse); "
              f"{dict(FIGURES)}")
    assert refused > 20 and len(collected) - refused > 40


def test_a_refused_row_is_named_by_its_first_line_even_when_a_name_spans_lines(
        make_config: Callable[..., Path], tmp_path: Path) -> None:
    """A quoted name may hold line breaks, so a record spans physical lines: the error names
    the line the row starts on, where an editor looks for it."""
    site = make_config(database={"url": f"sqlite:///{tmp_path / 'lines.sqlite3'}"},
                       security={"secret_key": "c" * 32})
    rows = [Row("ana@example.org", "Ana\r\nBcc: x@evil.example", "es", "ana@example.org"),
            Row("not an address", "Two\nLines", "en", None),
            Row("bo@example.org", "Bo", "en", "bo@example.org")]
    text, starts = _csv(rows)
    assert starts == [2, 4, 6]
    path = tmp_path / "lines.csv"
    path.write_text(text, "utf-8", newline="")
    code, _out, err = _cli(site, "subscribers", "import", str(path))
    assert code == 1 and f"{path}:4, field 'email'" in err, err
    blank = tmp_path / "blank.csv"  # a skipped blank line shifts nothing
    blank.write_text("email,name\r\n\r\nana@example.org,Ana\r\n\r\nnope,\"A\r\nB\"\r\n",
                     "utf-8", newline="")
    code, _out, err = _cli(site, "subscribers", "import", str(blank))
    assert code == 1 and f"{blank}:5, field 'email'" in err, err


def test_every_collected_address_is_delivered_once_or_refused_with_its_line(
        world: World, tmp_path: Path) -> None:
    """email-validator's whole table, not a sample: the valid addresses in one batch
    (delivered once each, to themselves only), each invalid one refused in a file of its
    own with line and field, and nothing stored."""
    sites, template, _servers = world
    valid: dict[str, Row] = {}
    refused = 0
    _fresh(sites[True], template)
    for raw, documented in collected_addresses():
        row = Row(raw, "", "en", expected_address(raw), documented)
        if row.stored is not None:
            valid.setdefault(row.stored.lower(), row)
            continue
        text, starts = _csv([row])
        path = tmp_path / "one.csv"
        path.write_text(text, "utf-8", newline="")
        code, _out, err = _cli(sites[True], "subscribers", "import", str(path))
        assert code == 1 and f"{path}:{starts[0]}, field 'email'" in err, (raw, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        refused += 1
    code, out, _ = _cli(sites[True], "subscribers", "list", "--json")
    assert code == 0 and json.loads(out) == []
    run_batch(world, (list(valid.values()), None, 0, True), tmp_path)
    assert refused > 200 and len(valid) > 30
