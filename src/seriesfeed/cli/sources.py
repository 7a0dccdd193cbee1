"""``seriesfeed sources list|poll``: the publisher's feeds and pages the daemon polls."""

from __future__ import annotations

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json
from seriesfeed.errors import SeriesfeedError

__all__ = ["history_command", "list_command", "poll_command", "sources"]


@cli.group()
def sources() -> None:
    """List and poll the [sources.<name>] of config.toml."""


@sources.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """Each source: url, schedule, last poll and status, entries added, error, next poll."""
    found = actions.sources.list_sources(app.store, app.config)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no sources configured (add a [sources.<name>] table to config.toml)")
    for s in found:
        state = "STOPPED" if s["stopped"] else ("FAILING" if s["last_error"] else "ok")
        click.echo(f"{s['name']}  {state}  {s['url']}")
        click.echo(f"  schedule {s['schedule']}  last poll {s['last_poll'] or '-'} "
                   f"({s['last_status'] or 'never polled'})  next poll {s['next_poll'] or '-'}"
                   f"  entries added {s['entries_added']}")
        if s["last_error"]:
            click.echo(f"  error: {s['last_error']}")


@sources.command("poll")
@click.argument("name", required=False)
@click.option("--force", is_flag=True,
              help="Poll even while the source waits out a backoff or a Retry-After.")
@pass_app
def poll_command(app: AppContext, name: str | None, force: bool) -> None:
    """Poll every source now (or only NAME); exit 1 when one of them failed."""
    import asyncio  # here, not at the top: `seriesfeed --help` imports this module

    results = asyncio.run(actions.sources.poll_sources(app.store, app.config,
                                                   [name] if name else None, force=force))
    if not results:
        click.echo("no sources configured")
    for result in results:
        click.echo(str(result))
    failed = [r.name for r in results if r.outcome in ("failed", "gone")]
    if failed:
        raise SeriesfeedError(f"{len(failed)} of {len(results)} sources failed: "
                              f"{', '.join(failed)}")


@sources.command("history")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many polls, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def history_command(app: AppContext, name: str, limit: int, as_json: bool) -> None:
    """NAME's polls, newest first: when, result, HTTP status, entries added and updated,
    error (the newest 1,000 are kept)."""
    found = actions.sources.source_history(app.store, app.config, name, limit=limit)
    if as_json:
        print_json(found)
        return
    for p in found["polls"]:
        click.echo(f"{p['at']}  {p['result']:<9} {p['status'] or '-':<6} "
                   f"added {p['added']} updated {p['updated']}"
                   + (f"  error: {p['error']}" if p["error"] else ""))
    click.echo(f"{len(found['polls'])} of {found['total']} polls")
