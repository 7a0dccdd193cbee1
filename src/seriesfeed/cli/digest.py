"""``seriesfeed digest preview`` and ``seriesfeed digest send``."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from seriesfeed import actions, emails, mailer, outbox
from seriesfeed.cli import AppContext, cli, pass_app
from seriesfeed.errors import ValidationError
from seriesfeed.models import Frequency
from seriesfeed.store import entries as eq


@cli.group()
def digest() -> None:
    """Preview and send the email digests."""


def _latest(app: AppContext, language: str, count: int = 10) -> outbox.Rendered | None:
    """What a subscriber of the language would get: the newest entries (the store has no
    cursor for a preview)."""
    with app.store.read() as conn:
        upto = eq.max_seq(conn)
        newest = eq.list_entries(conn, language=language, limit=count)
    if not newest:
        return None
    after = min(e.seq or 0 for e in newest) - 1
    return outbox.render_digest(app.store, app.config, language, after, upto, ())


@digest.command()
@click.option("--lang", "language", default=None, help="Language (default: site's).")
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]), default="weekly")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML part to this file (default: print the text part).")
@pass_app
def preview(app: AppContext, language: str | None, frequency: str, out: Path | None) -> None:
    """Render a digest of the newest entries; sends nothing, changes nothing."""
    lang = language or app.config.site.default_language
    if lang not in app.config.languages:
        raise ValidationError(f"unknown language '{lang}'", field="--lang")
    rendered = _latest(app, lang)
    if rendered is None:
        click.echo(f"No entries in '{lang}' yet.")
        return
    if out:
        out.write_text(rendered.html, encoding="utf-8")
        click.echo(f"{rendered.subject} ({frequency}): HTML written to {out}")
    else:
        click.echo(f"Subject: {rendered.subject}\n\n{rendered.text}")


@digest.command()
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]),
              help="Only this frequency (default: every frequency).")
@click.option("--dry-run", is_flag=True, help="Show who would get what; record nothing.")
@click.option("--to", "to", default=None, help="Send a test copy to this address only.")
@pass_app
def send(app: AppContext, frequency: str | None, dry_run: bool, to: str | None) -> None:
    """Record the digests due now and send them (and anything left in the outbox)."""
    freq = Frequency(frequency) if frequency else None
    if to:
        from seriesfeed.subscriptions import normalize_email

        address = normalize_email(to, field="--to")
        rendered = _latest(app, app.config.site.default_language)
        if rendered is None:
            raise ValidationError("there are no entries to send", field="--to")
        link = f"{app.config.public_url}/unsubscribe/test"
        msg = emails.build_message(
            sender=emails.sender_address(app.config), to_email=address, to_name=None,
            subject=f"[test] {rendered.subject}",
            text=rendered.text.replace(outbox.UNSUBSCRIBE, link).replace(
                outbox.PREFERENCES, link),
            html=rendered.html.replace(outbox.UNSUBSCRIBE, link).replace(
                outbox.PREFERENCES, link),
            message_id=emails.make_message_id("test", str(time.time_ns()), app.config))
        mailer.send_now(app.config, msg)
        click.echo(f"Test copy sent to {address}; no cursor or outbox row was touched.")
        return
    if dry_run:
        click.echo(actions.digest_dry_run(app.store, app.config, freq))
        return
    if not sys.stdout.isatty():
        click.echo(asyncio.run(actions.send_digests(app.store, app.config, frequency=freq,
                                                    scheduled=False)))
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("Sending", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total or None)

        summary = asyncio.run(actions.send_digests(app.store, app.config, frequency=freq,
                                                   scheduled=False, progress=advance))
    click.echo(summary)
