"""``seriesfeed series …``: a series' title, description and URL in each language."""

from __future__ import annotations

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json

__all__ = ["list_command", "series", "set_command", "show_command"]


@cli.group()
def series() -> None:
    """List series, show one, set its texts per language."""


def _describe(info: actions.SeriesInfo) -> list[str]:
    counts = ", ".join(f"{n} {code}" for code, n in sorted(info.entries.items())) or "none"
    lines = [f"{info.series.slug}  (entries: {counts})"]
    for code, text in sorted(info.series.texts.items()):
        lines.append(f"  {code}: {text.title}")
        if text.description:
            lines.append(f"      {text.description}")
        if text.url:
            lines.append(f"      {text.url}")
    return lines


@series.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """Every series with its texts per language and its entries per language."""
    found = actions.list_series_info(app.store)
    if as_json:
        print_json([s.to_json() for s in found])
        return
    for info in found:
        click.echo("\n".join(_describe(info)))
    click.echo(f"{len(found)} series")


@series.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show_command(app: AppContext, slug: str, as_json: bool) -> None:
    """One series by its slug."""
    info = actions.show_series(app.store, slug)
    if as_json:
        print_json(info.to_json())
        return
    click.echo("\n".join(_describe(info)))


@series.command("set")
@click.argument("slug")
@click.option("--lang", "language", required=True, help="Language of the texts (e.g. es).")
@click.option("--title", default=None, help="The series' title in that language.")
@click.option("--description", default=None, help="Its description in that language.")
@click.option("--url", default=None, help="Its page on the publisher's site, in that language.")
@click.option("--json", "as_json", is_flag=True, help="Print the series as JSON.")
@pass_app
def set_command(app: AppContext, slug: str, language: str, title: str | None,
                description: str | None, url: str | None, as_json: bool) -> None:
    """Set SLUG's title, description or URL in one language (what is not given stays)."""
    if title is None and description is None and url is None:
        raise click.UsageError("give --title, --description or --url")
    info = actions.set_series_text(app.store, app.config, slug, language, title=title,
                                   description=description, url=url)
    if as_json:
        print_json(info.to_json())
        return
    click.echo("\n".join(_describe(info)))
