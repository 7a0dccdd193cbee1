"""``seriesfeed subscribers …``: add, list, import, export, unsubscribe, remove."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json, write_file
from seriesfeed.clock import local_time
from seriesfeed.models import (
    LISTING_MAX,
    OPERATOR_STATUSES,
    Frequency,
    Subscriber,
    SubscriberStatus,
)

__all__ = [
    "add", "export", "import_command", "list_command", "remove", "set_command", "show",
    "subscribers", "unsubscribe", "unsuppress",
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
@click.option("--search", default=None, help="Only addresses containing this (any case).")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@click.option("--language", "--lang", "language", default=None, help="Only this language.")
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]))
@click.option("--limit", type=click.IntRange(min=1, max=LISTING_MAX),
              default=None, help="At most this many (one page; the total is printed).")
@click.option("--offset", type=click.IntRange(min=0), default=None,
              help="Skip this many first (with --limit: the page's start).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_command(app: AppContext, search: str | None, status: str | None,
                 language: str | None, frequency: str | None, limit: int | None,
                 offset: int | None, as_json: bool) -> None:
    """List subscribers (oldest first), all or those matching the filters."""
    chosen = actions.subscriber_admin.filters(search=search, status=status, language=language,
                                      frequency=frequency, languages=app.config.languages)
    total: int | None = None
    if limit is None and offset is None:  # every match, streamed: memory stays flat
        found: Iterable[Subscriber] = actions.subscribers.list_subscribers(
            app.store, None, chosen)
    else:
        page = actions.subscriber_admin.search_subscribers(
            app.store, chosen, limit=limit or LISTING_MAX, offset=offset or 0)
        found, total = page.subscribers, page.total
    if as_json:
        print_json([_local(s.to_json(), app) for s in found])
        return
    n = 0
    for s in found:
        n += 1
        click.echo(f"{s.email}  {s.language}  {s.frequency.value}  {s.status.value}"
                   f"{'  ' + s.name if s.name else ''}")
    click.echo(f"{n} subscribers" if total is None else
               f"{n} of {total} subscribers (from {(offset or 0) + 1 if n else 0})")


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


@subscribers.command("show")
@click.argument("who")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: AppContext, who: str, as_json: bool) -> None:
    """Everything stored about WHO (an address in any case, or a subscriber id): status and
    its dates, consent, bounces, series, suppression, and the messages sent to them."""
    d = actions.subscriber_admin.show_subscriber(app.store, app.config, who)
    if as_json:
        print_json(d.to_json())
        return
    sup = d.suppression
    click.echo(f"{d.email}: " + (f"SUPPRESSED ({sup['reason']}, since {sup['since']})"
                                 if sup else "not suppressed"))
    s = d.subscriber
    if s is None:
        click.echo("  no subscriber (erased): only the suppression is left")
        return
    click.echo(f"  subscriber {s['id']}  {s['status']}  {s['language']}  {s['frequency']}  "
               f"series {', '.join(s['series']) or 'all'}  start {s['start']}"
               + (f"  name {s['name']}" if s["name"] else ""))
    click.echo(f"  created {s['created_at']}  confirmed {s['confirmed_at'] or '-'}  "
               f"unsubscribed {s['unsubscribed_at'] or '-'}"
               + (f" (was {s['unsubscribed_from']})" if s["unsubscribed_from"] else ""))
    click.echo(f"  consent {s['consent_at'] or '-'} from {s['consent_ip'] or '-'} via "
               f"{s['consent_source'] or '-'}; confirmation mail {s['confirm_sent_at'] or '-'}")
    click.echo(f"  bounces: {s['hard_bounces']} hard, {s['soft_bounces']} soft; digest cursor "
               f"{s['last_seq']}" + ("; catching up" if s["catching_up"] else ""))
    click.echo(f"  messages: {d.outbox_total}" + (f" (newest {len(d.outbox)} shown)"
                                                 if d.outbox_total > len(d.outbox) else ""))
    for m in d.outbox:
        why = f"  {m['smtp_code'] or ''} {m['error']}".rstrip() if m["error"] else ""
        click.echo(f"    {m['id']:>7}  {m['kind']:<8} {m['state']:<8} "
                   f"sent {m['sent_at'] or '-'}{why}")


@subscribers.command("set")
@click.argument("who")
@click.option("--status", required=True,
              type=click.Choice([s.value for s in OPERATOR_STATUSES]))
@pass_app
def set_command(app: AppContext, who: str, status: str) -> None:
    """Set WHO's status by hand: unsubscribed (from any status), or confirmed (from pending,
    when consent was recorded elsewhere, or from bounced); never confirms a suppressed or an
    unsubscribed address. Recorded in the audit log."""
    change = actions.subscriber_admin.set_status(app.store, who, status)
    click.echo(f"{change.email}: {change.before.value} -> {change.after.value}"
               if change.changed else f"{change.email}: already {change.after.value}")


@subscribers.command("unsuppress")
@click.argument("email")
@click.option("--reason", required=True, help="Why it is lifted (kept in the audit log).")
@pass_app
def unsuppress(app: AppContext, email: str, reason: str) -> None:
    """Lift EMAIL's suppression so it may subscribe again (with a confirmation); the reason
    is recorded in the audit log (`admin log`)."""
    done = actions.subscriber_admin.unsuppress(app.store, email, reason)
    click.echo(f"{done.shown}: suppression ({done.was}) lifted; recorded in the audit log "
               f"(row {done.audit_id})")
