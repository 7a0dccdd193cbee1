"""``seriesfeed subscribers …``: add, list, import, export, unsubscribe, remove."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json, write_file
from seriesfeed.clock import local_time
from seriesfeed.models import SubscriberStatus

__all__ = [
    "add", "export", "import_command", "list_command", "remove", "subscribers", "unsubscribe",
]


@cli.group()
def subscribers() -> None:
    """Manage subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default=None)
@click.option("--lang", "language", default=None, help="Language code (default: site's).")
@click.option("--frequency", type=click.Choice(["daily", "weekly"]), default="weekly",
              show_default=True)
@click.option("--series", "series", multiple=True, help="Follow only this series (repeatable).")
@click.option("--confirmed", is_flag=True,
              help="Consent was recorded elsewhere: no confirmation mail.")
@click.option("--start", type=click.Choice(["first", "new"]), default="new", show_default=True,
              help="first: the series from part 1, at the digest's pace; new: only new parts.")
@click.option("--welcome", is_flag=True,
              help="With --confirmed: send the welcome mail (the confirm link always does).")
@pass_app
def add(app: AppContext, email: str, name: str | None, language: str | None, frequency: str,
        series: tuple[str, ...], confirmed: bool, start: str, welcome: bool) -> None:
    """Add a subscriber (pending, with a confirmation mail, unless --confirmed)."""
    result = actions.subscribers.add_subscriber(
        app.store, app.config, email, name=name, language=language, frequency=frequency,
        confirmed=confirmed, source="cli", series=series, resubscribe=True, start=start,
        welcome=welcome)
    if result.subscriber is None:
        click.echo(f"{email}: suppressed (removed earlier); nothing done")
        return
    sub = result.subscriber
    if result.send_confirmation:
        sent = actions.subscribers.send_confirmation(app.store, app.config, sub)
        click.echo(f"{sub.email}: {sub.status.value}; confirmation mail {sent.value}")
    else:
        click.echo(f"{sub.email}: {sub.status.value}" + ("" if result.created
                                                          else " (already subscribed)"))
        if welcome and confirmed and result.created:
            actions.subscribers.send_welcome(app.store, app.config)


@subscribers.command("list")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_command(app: AppContext, status: str | None, as_json: bool) -> None:
    """List subscribers."""
    found = actions.subscribers.list_subscribers(app.store, SubscriberStatus(status) if status
                                           else None)
    if as_json:
        print_json([_local(s.to_json(), app) for s in found])
        return
    n = 0
    for s in found:
        n += 1
        click.echo(f"{s.email}  {s.language}  {s.frequency.value}  {s.status.value}"
                   f"{'  ' + s.name if s.name else ''}")
    click.echo(f"{n} subscribers")


def _local(item: dict[str, object], app: AppContext) -> dict[str, object]:
    """Times in the site's zone, to the second, as everywhere else: one clock for the operator."""
    from datetime import datetime


    for key in ("created_at", "confirmed_at"):
        if isinstance(item.get(key), str):
            item[key] = local_time(datetime.fromisoformat(str(item[key])), app.config.zone)
    return item


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--send-confirmations", is_flag=True,
              help="Send the confirmation mail to every pending row imported.")
@click.option("--welcome", is_flag=True,
              help="Send the welcome mail to every confirmed row imported.")
@pass_app
def import_command(app: AppContext, file: Path, send_confirmations: bool,
                   welcome: bool) -> None:
    """Import FILE.csv (the columns `subscribers export` writes; only email required).

    status 'confirmed' is for lists whose consent was recorded elsewhere; unsubscribed and
    removed addresses are never resubscribed by an import. Pending rows get a confirmation
    mail only with --send-confirmations."""
    report = actions.subscriber_csv.import_subscribers(app.store, app.config, file, welcome=welcome)
    click.echo(report.summary(str(file)))
    if report.welcomed:
        actions.subscribers.send_welcome(app.store, app.config)
        click.echo(f"{report.welcomed} confirmed: welcome mail queued")
    if not report.pending:
        return
    if not send_confirmations:
        click.echo(f"{len(report.pending)} pending: no confirmation mail sent "
                   "(--send-confirmations sends it)")
        return
    sent = sum(actions.subscribers.send_confirmation(app.store, app.config, sub)
               is actions.subscribers.ConfirmationMail.SENT for sub in report.pending)
    click.echo(f"{len(report.pending)} pending: confirmation mail sent to {sent}"
               + (f", {len(report.pending) - sent} not sent (see the log)"
                  if sent < len(report.pending) else ""))


@subscribers.command("export")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (default: standard output).")
@pass_app
def export(app: AppContext, out: Path | None) -> None:
    """Export subscribers as CSV (the columns `subscribers import` reads)."""
    if out is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for row in actions.subscriber_csv.export_rows(app.store, app.config):
            writer.writerow(row)
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    count = -1  # the header row is not a subscriber
    for row in actions.subscriber_csv.export_rows(app.store, app.config):
        writer.writerow(row)
        count += 1
    write_file(out, text.getvalue().encode("utf-8"))
    click.echo(f"Wrote {count} subscribers to {out}")


@subscribers.command("unsubscribe")
@click.argument("who")
@pass_app
def unsubscribe(app: AppContext, who: str) -> None:
    """Unsubscribe WHO: an email address, or the token of an unsubscribe link or of a
    mail to [mail] unsubscribe_mailto (its subject is "unsubscribe TOKEN")."""
    who = who.strip().removeprefix("unsubscribe").strip()
    if "@" in who:
        sub = actions.subscribers.unsubscribe_address(app.store, who)
    else:
        found = actions.subscribers.unsubscribe(app.store, app.config, who.rsplit("/", 1)[-1])
        if found is None:
            click.echo("that subscriber was removed earlier; nothing is sent to them")
            return
        sub = found
    click.echo(f"{sub.email}: unsubscribed")


@subscribers.command("remove")
@click.argument("email")
@pass_app
def remove(app: AppContext, email: str) -> None:
    """Erase a subscriber's personal data; the address stays suppressed (a hash is kept)."""
    sub = actions.subscribers.remove_subscriber(app.store, email)
    click.echo(f"Removed {sub.email}; the address stays suppressed")
