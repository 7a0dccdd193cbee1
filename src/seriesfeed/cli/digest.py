"""``seriesfeed digest preview`` and ``seriesfeed digest send``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, write_file
from seriesfeed.errors import ValidationError
from seriesfeed.models import Frequency

__all__ = ["digest", "preview", "send", "test_send"]


@cli.group()
def digest() -> None:
    """Preview and send the email digests."""


@digest.command()
@click.option("--lang", "language", default=None, help="Language (default: site's).")
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]), default="weekly")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML part to this file (default: print the text part).")
@pass_app
def preview(app: AppContext, language: str | None, frequency: str, out: Path | None) -> None:
    """Render the next digest of a language and frequency (for the subscriber furthest
    behind; the newest entries when nobody is due); sends nothing, changes nothing."""
    lang = _language(app, language)
    shown = actions.preview_digest(app.store, app.config, lang, Frequency(frequency))
    if shown is None:
        click.echo(f"No entries in '{lang}' yet.")
        return
    if shown.sample:
        click.echo(f"No {lang} {frequency} subscriber is due a digest now; this sample shows "
                   "the newest entries.", err=True)
    if out:
        write_file(out, shown.html.encode("utf-8"))
        click.echo(f"{shown.rendered.subject} ({frequency}): HTML written to {out}")
    else:
        click.echo(f"Subject: {shown.rendered.subject}\n\n{shown.text}")


def _language(app: AppContext, language: str | None, option: str = "--lang") -> str:
    lang = language or app.config.site.default_language
    if lang not in app.config.languages:
        raise ValidationError(f"unknown language '{lang}' (configured: "
                              f"{', '.join(app.config.languages)})", field=option)
    return lang


@digest.command("test-send")
@click.option("--language", "--lang", "language", default=None,
              help="Language of the digest (default: site's).")
@click.option("--to", "to", required=True, help="The one address to send it to.")
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]), default="weekly",
              show_default=True)
@pass_app
def test_send(app: AppContext, language: str | None, to: str, frequency: str) -> None:
    """Send the next digest of a language (what `digest preview` shows) to one address,
    through the mailer with a Message-ID of its own; records no digest, queues no outbox
    row, moves no cursor."""
    sent = actions.digests.send_test_copy(
        app.store, app.config, language=_language(app, language, "--language"), to=to,
        frequency=Frequency(frequency))
    click.echo(f"Test copy sent to {sent.address} ({sent.message_id}): {sent.subject}"
               + (" [a sample: nobody is due a digest now]" if sent.sample else ""))
    click.echo("No digest was recorded and no cursor moved.")


@digest.command()
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]),
              help="Only this frequency (default: every frequency).")
@click.option("--dry-run", is_flag=True, help="Show who would get what; record nothing.")
@click.option("--to", "to", default=None, help="Send a test copy to this address only.")
@click.option("--lang", "language", default=None,
              help="Language of the --to test copy (default: site's).")
@pass_app
def send(app: AppContext, frequency: str | None, dry_run: bool, to: str | None,
         language: str | None) -> None:
    """Record the digests due now and send them (and anything left in the outbox)."""
    freq = Frequency(frequency) if frequency else None
    if to:
        address = actions.send_test_message(app.store, app.config, to,
                                            _language(app, language), freq or Frequency.WEEKLY)
        click.echo(f"Test copy sent to {address}; no cursor or outbox row was touched.")
        return
    if dry_run:
        click.echo(actions.digest_dry_run(app.store, app.config, freq))
        return
    import asyncio  # here, not at the top: `seriesfeed --help` imports this module

    if not sys.stdout.isatty():
        click.echo(asyncio.run(_send_until_signal(app, freq)))
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("Sending", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total or None)

        summary = asyncio.run(_send_until_signal(app, freq, advance))
    click.echo(summary)


async def _send_until_signal(app: AppContext, freq: Frequency | None,
                             progress: Callable[[int, int], None] | None = None) -> str:
    """`digest send` stops like the daemon on SIGTERM or SIGINT (cron, systemd, timeout):
    no new sends, the ones in flight finish, unsent rows are handed back queued."""
    import asyncio

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        return await actions.send_digests(app.store, app.config, frequency=freq,
                                          scheduled=False, stopping=stopping,
                                          progress=progress)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
