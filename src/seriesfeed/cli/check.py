"""``seriesfeed check``: integrity of the store, on demand."""

from __future__ import annotations

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app

__all__ = ["check"]


@cli.command()
@pass_app
def check(app: AppContext) -> None:
    """Check the store: SQLite's integrity_check and foreign_key_check, the schema revision,
    and a full read of every table (PostgreSQL: the revision and the reads). Exits 1 and
    lists what is wrong when anything is."""
    report = actions.ops.check_store(app.config)
    for line in report.passed:
        click.echo(f"ok: {line}")
    for line in report.problems:
        click.echo(f"problem: {line}")
    actions.ops.verdict(app.config, report)
    click.echo("ok")
