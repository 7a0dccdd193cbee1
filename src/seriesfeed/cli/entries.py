"""``seriesfeed import`` and ``seriesfeed entries …``: getting articles in and out."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.actions import FORMATS
from seriesfeed.cli import AppContext, cli, pass_app, print_json, write_file
from seriesfeed.errors import ValidationError
from seriesfeed.models import Entry

__all__ = [
    "add_command", "entries", "export_command", "import_command", "link_command", "list_command",
    "remove_command", "set_command", "show_command",
]


@cli.command("import")
@click.argument("file")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format (default: detected from the name and content).")
@click.option("--series", "series_slug", help="Series slug for entries of a feed file.")
@click.option("--series-title", "titles", multiple=True, metavar="LANG=TITLE",
              help="The series' title in another language, e.g. 'es=Reflexiones sobre la "
                   "crisis de la ISO' (repeatable).")
@pass_app
def import_command(app: AppContext, file: str, fmt: str | None,
                   series_slug: str | None, titles: tuple[str, ...]) -> None:
    """Import entries from FILE or an http(s) URL: a series page (text or HTML), our JSON,
    CSV, an RSS/Atom feed or a JSON Feed.

    The whole document is imported in one transaction: a bad row imports nothing."""
    given: dict[str, str] = {}
    for item in titles:
        code, sep, title = item.partition("=")
        if not sep or not code.strip() or not title.strip():
            raise ValidationError(f"'{item}' is not LANG=TITLE (e.g. es=Mi serie)",
                                  field="--series-title")
        given[code.strip()] = title.strip()
    if actions.sources.is_url(file):
        if given:
            raise ValidationError("is for files; name a source's series in other languages "
                                  "with `seriesfeed series set`", field="--series-title")
        report = actions.sources.import_url(app.store, app.config, file, fmt, series_slug)
    else:
        report = actions.import_entries(app.store, app.config, Path(file), fmt, series_slug,
                                        given)
    click.echo(report.summary())


@cli.group()
def entries() -> None:
    """Add, list, show, link, export and remove entries."""


def _entry_line(e: Entry) -> str:
    byline = ", ".join(a.name for a in e.authors) or "-"
    line = f"{e.seq:>5}  {e.language}  {e.published:%Y-%m-%d}  {e.part or '-':>3}  {e.title}  " \
        f"({byline})"
    if e.scheduled:
        line += f"  [scheduled {e.published.isoformat(timespec='minutes')}]"
    return line


@entries.command("list")
@click.option("--lang", "language", help="Only entries in this language.")
@click.option("--series", "series_slug", help="Only entries of this series (slug).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_command(app: AppContext, language: str | None, series_slug: str | None,
                 as_json: bool) -> None:
    """List entries, oldest first."""
    if language is not None and language not in app.config.languages:
        raise ValidationError(f"unknown language '{language}'", field="--lang")
    found = [actions.localized(e, app.config)
             for e in actions.list_entries(app.store, language, series_slug)]
    if as_json:
        print_json([{**e.to_json(), "scheduled": e.scheduled} for e in found])
        return
    for e in found:
        click.echo(_entry_line(e))
    click.echo(f"{len(found)} entries")


@entries.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show_command(app: AppContext, ref: str, as_json: bool) -> None:
    """Show one entry by id, URL or number."""
    e = actions.localized(actions.show_entry(app.store, ref), app.config)
    if as_json:
        print_json(e.to_json())
        return
    for key, value in e.to_json().items():
        if key == "authors":
            value = "; ".join(f"{a.name} ({a.kind.value})" for a in e.authors)
        click.echo(f"{key:>15}: {'' if value is None else value}")


def _parse_date(value: str, app: AppContext) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"'{value}' is not an ISO 8601 date (2019-03-15 or "
                              "2019-03-15T09:30:00-04:00)", field="--published") from exc
    if len(value) == 10:
        parsed = datetime.combine(parsed.date(), time(0))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=app.config.zone)


@entries.command("add")
@click.option("--series", "series_slug", required=True, help="Series slug.")
@click.option("--series-title", help="Creates the series with this title if it is new.")
@click.option("--title", required=True)
@click.option("--summary", default="")
@click.option("--published", required=True, help="Date or date-time (ISO 8601).")
@click.option("--lang", "language", default=None, help="Language code (default: site's).")
@click.option("--byline", default="", help='Authors as printed: "A, B and C".')
@click.option("--org", "orgs", multiple=True, help="An organisation author (repeatable).")
@click.option("--section", default=None)
@click.option("--url", default=None, help="Article URL (default: from the URL pattern).")
@click.option("--content-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="HTML body of the article.")
@click.option("--translation-of", default=None, help="Id or URL of the original entry.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored entry as JSON.")
@pass_app
def add_command(app: AppContext, series_slug: str, series_title: str | None, title: str,
                summary: str, published: str, language: str | None, byline: str,
                orgs: tuple[str, ...], section: str | None, url: str | None,
                content_file: Path | None, translation_of: str | None, as_json: bool) -> None:
    """Add one entry (or update the one with the same URL)."""
    entry = actions.new_entry(
        app.config, series_slug=series_slug, title=title, summary=summary,
        published=_parse_date(published, app), language=language, byline=byline, orgs=orgs,
        section=section, url=url, content_file=content_file, translation_of=translation_of)
    stored = actions.localized(actions.add_entry(app.store, app.config, entry, series_title),
                               app.config)
    if as_json:
        print_json(stored.to_json())
    else:
        click.echo(f"Stored {stored.id}")


@entries.command("remove")
@click.argument("ref")
@pass_app
def remove_command(app: AppContext, ref: str) -> None:
    """Remove an entry by id, URL or number."""
    removed = actions.remove_entry(app.store, ref)
    click.echo(f"Removed {removed.id}")


@entries.command("set")
@click.argument("ref")
@click.option("--part", default=None, metavar="N|auto",
              help="The entry's part number in its series; 'auto' goes back to the "
                   "number its publication date gives.")
@click.option("--title", default=None, help="A corrected title.")
@click.option("--summary", default=None, help="A corrected summary.")
@click.option("--title-from-source", is_flag=True,
              help="Lift the editor's title: the next poll of the source sets it.")
@click.option("--summary-from-source", is_flag=True,
              help="Lift the editor's summary: the next poll of the source sets it.")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@pass_app
def set_command(app: AppContext, ref: str, part: str | None, title: str | None,
                summary: str | None, title_from_source: bool, summary_from_source: bool,
                as_json: bool) -> None:
    """Set what an editor decides about one entry (by id, URL or number): its part, and
    fixes to its title or summary (it keeps its id and is not sent again; a poll of its
    source leaves them until --title-from-source or --summary-from-source)."""
    if title is not None and title_from_source:
        raise ValidationError("give --title or --title-from-source, not both",
                              field="--title-from-source")
    if summary is not None and summary_from_source:
        raise ValidationError("give --summary or --summary-from-source, not both",
                              field="--summary-from-source")
    unpin = tuple(name for name, flag in (("title", title_from_source),
                                          ("summary", summary_from_source)) if flag)
    if part is None and title is None and summary is None and not unpin:
        raise ValidationError("nothing to set: give --part, --title, --summary, "
                              "--title-from-source or --summary-from-source", field="--part")
    value: int | str | None = None
    if part is not None:  # checked before anything is written
        value = part.strip().lower()
        if value != "auto":
            if not (part.strip().isascii() and part.strip().isdigit()
                    and len(part.strip()) <= 6):
                raise ValidationError(f"'{part}' is not a part number (1, 2, … or auto)",
                                      field="--part")
            value = int(part.strip())
    if title is not None and not title.strip():
        raise ValidationError("the title is empty", field="--title")
    # the part first: the one a store can refuse (taken by another entry)
    found = (actions.set_entry(app.store, ref, part=value, from_source=unpin)
             if value is not None or unpin else None)
    if title is not None or summary is not None:
        found = actions.entries.set_entry_texts(app.store, app.config, ref, title=title,
                                                summary=summary)
    assert found is not None
    e = actions.localized(found, app.config)
    if as_json:
        print_json(e.to_json())
    else:
        click.echo(f"{e.id}: part {e.part} of {e.parts}: {e.title}")


@entries.command("link")
@click.argument("original")
@click.argument("translation")
@pass_app
def link_command(app: AppContext, original: str, translation: str) -> None:
    """Link TRANSLATION (id, URL or number) as a translation of ORIGINAL."""
    a, b = actions.link_translations(app.store, original, translation)
    click.echo(f"Linked {b.id} ({b.language}) as a translation of {a.id} ({a.language})")


@entries.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@click.option("--series", "series_slug", help="Only this series.")
@pass_app
def export_command(app: AppContext, fmt: str, out: Path | None, series_slug: str | None) -> None:
    """Export entries in a format `seriesfeed import` reads back."""
    data, count = actions.export_entries(app.store, app.config, fmt, series_slug)
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        write_file(out, data)
        click.echo(f"Wrote {count} entries to {out}")
