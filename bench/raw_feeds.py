"""The raw baseline for bench/feeds.py: the same file set as `seriesfeed feeds build`
written by the least code that could: one sqlite3 read, feedgen for Atom and RSS, json for
JSON Feed, string formatting for the HTML pages and the sitemap; no seriesfeed import.

    python bench/raw_feeds.py STORE.sqlite3 OUT_DIR MAX_ENTRIES BASE_URL LANG [LANG ...]

Every language x series (and each language site-wide) gets atom.xml, rss.xml, feed.json
(the newest MAX_ENTRIES) and full archive pages (archive/N.xml and .json, MAX_ENTRIES each,
oldest first); every language an index page, every language x series a series page, every
entry an article page; then sitemap.xml and robots.txt. Each file is written as seriesfeed
writes its files (a temporary file, fsync, rename), so both pay the same durability.
Prints the count of files and their bytes.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from feedgen.feed import FeedGenerator


def write(out: Path, relative: str, body: bytes, totals: list[int]) -> None:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    totals[0] += 1
    totals[1] += len(body)


def when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read(db: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    authors: dict[int, list[str]] = {}
    for seq, name in conn.execute("SELECT entry_seq, name FROM entry_authors "
                                  "ORDER BY entry_seq, position"):
        authors.setdefault(seq, []).append(name)
    rows = conn.execute(
        "SELECT e.seq, e.id, s.slug, e.language, e.title, e.summary, e.url, e.published, "
        "e.updated, e.slug FROM entries e JOIN series s ON s.id = e.series_id "
        "ORDER BY e.published DESC, e.seq DESC").fetchall()
    conn.close()
    return [{"seq": r[0], "id": r[1], "series": r[2], "language": r[3], "title": r[4],
             "summary": r[5], "url": r[6], "published": when(r[7]), "updated": when(r[8]),
             "slug": r[9], "authors": authors.get(r[0], [])} for r in rows]


def feed(entries: list[dict[str, object]], base: str, self_url: str, language: str,
         kind: str) -> bytes:
    fg = FeedGenerator()
    fg.id(base + "/")
    fg.title(f"Feed {base}")
    fg.subtitle("Entries")
    fg.link(href=self_url, rel="self")
    fg.link(href=base + "/", rel="alternate")
    fg.language(language)
    fg.updated(max((e["updated"] for e in entries), default=datetime(2000, 1, 1, tzinfo=UTC)))  # type: ignore[type-var]
    for e in entries:
        fe = fg.add_entry(order="append")
        fe.id(e["id"])
        fe.title(e["title"])
        fe.summary(e["summary"])
        fe.link(href=e["url"], rel="alternate")
        fe.published(e["published"])
        fe.updated(e["updated"])
        for name in e["authors"]:  # type: ignore[attr-defined]
            fe.author({"name": name})
    body: bytes = fg.atom_str(pretty=True) if kind == "atom" else fg.rss_str(pretty=True)
    return body


def json_feed(entries: list[dict[str, object]], base: str) -> bytes:
    items = [{"id": e["id"], "url": e["url"], "title": e["title"], "summary": e["summary"],
              "content_text": e["summary"],
              "date_published": e["published"].isoformat(),  # type: ignore[attr-defined]
              "authors": [{"name": n} for n in e["authors"]]}  # type: ignore[attr-defined]
             for e in entries]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": base,
                       "feed_url": base + "/feed.json", "items": items},
                      ensure_ascii=False).encode("utf-8")


def page(title: str, body: str, language: str) -> bytes:
    return (f'<!doctype html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n</head>\n<body>\n{body}\n</body>\n"
            "</html>\n").encode()


def main() -> None:
    db, out_dir, max_entries, base_url, *languages = sys.argv[1:]
    out, n = Path(out_dir), int(max_entries)
    totals = [0, 0]
    entries = read(db)
    series = sorted({str(e["series"]) for e in entries})
    urls: list[str] = []
    for lang in languages:
        mine = [e for e in entries if e["language"] == lang]
        scopes: list[tuple[str | None, list[dict[str, object]]]] = [(None, mine)]
        scopes += [(s, [e for e in mine if e["series"] == s]) for s in series]
        for slug, chosen in scopes:
            rel = f"feeds/{lang}" + (f"/{slug}" if slug else "")
            base = f"{base_url}/{rel}"
            current = chosen[:n]
            write(out, f"{rel}/atom.xml", feed(current, base, base + "/atom.xml", lang, "atom"),
                  totals)
            write(out, f"{rel}/rss.xml", feed(current, base, base + "/rss.xml", lang, "rss"),
                  totals)
            write(out, f"{rel}/feed.json", json_feed(current, base), totals)
            oldest_first = sorted(chosen, key=lambda e: e["seq"])  # type: ignore[arg-type,return-value]
            pages = len(oldest_first) // n if len(oldest_first) > n else 0
            for p in range(1, pages + 1):
                chunk = list(reversed(oldest_first[(p - 1) * n: p * n]))
                url = f"{base}/archive/{p}.xml"
                write(out, f"{rel}/archive/{p}.xml", feed(chunk, base, url, lang, "atom"),
                      totals)
                write(out, f"{rel}/archive/{p}.json", json_feed(chunk, base), totals)
        index = []
        for slug in series:
            listed = [e for e in mine if e["series"] == slug]
            rows = "\n".join(
                f'<li><a href="/{lang}/{slug}/{e["slug"]}/">{html.escape(str(e["title"]))}</a> '
                f'{e["published"]:%d %B %Y} {html.escape(", ".join(e["authors"]))}</li>'  # type: ignore[arg-type]
                for e in listed)
            write(out, f"{lang}/{slug}/index.html", page(slug, f"<ol>\n{rows}\n</ol>", lang),
                  totals)
            index.append(f'<li><a href="/{lang}/{slug}/">{slug}</a> ({len(listed)})</li>')
            urls.append(f"{base_url}/{lang}/{slug}/")
            for i, e in enumerate(listed):
                prev = listed[i - 1] if i else None
                after = listed[i + 1] if i + 1 < len(listed) else None
                body = (f"<article>\n<h1>{html.escape(str(e['title']))}</h1>\n"
                        f"<p>{html.escape(', '.join(e['authors']))}</p>\n"  # type: ignore[arg-type]
                        f"<time>{e['published']:%d %B %Y}</time>\n"
                        f"<p>{html.escape(str(e['summary']))}</p>\n"
                        f'<a href="{html.escape(str(e["url"]))}">Read it</a>\n</article>\n'
                        + (f'<a rel="prev" href="../{prev["slug"]}/">'
                           f"{html.escape(str(prev['title']))}</a>\n" if prev else "")
                        + (f'<a rel="next" href="../{after["slug"]}/">'
                           f"{html.escape(str(after['title']))}</a>\n" if after else ""))
                write(out, f"{lang}/{slug}/{e['slug']}/index.html",
                      page(str(e["title"]), body, lang), totals)
                urls.append(f"{base_url}/{lang}/{slug}/{e['slug']}/")
        write(out, f"{lang}/index.html", page(lang, "<ul>\n" + "\n".join(index) + "\n</ul>",
                                              lang), totals)
        urls.append(f"{base_url}/{lang}/")
    sitemap = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
               + "".join(f"<url><loc>{html.escape(u)}</loc></url>\n" for u in urls)
               + "</urlset>\n")
    write(out, "sitemap.xml", sitemap.encode("utf-8"), totals)
    write(out, "robots.txt", f"User-agent: *\nSitemap: {base_url}/sitemap.xml\n".encode(),
          totals)
    print(f"RESULT {totals[0]} {totals[1]}")


if __name__ == "__main__":
    main()
