"""``seriesfeed outbox list|retry`` and ``seriesfeed digests list|show``: what was sent to
whom, what was not and why, on the command line."""

from __future__ import annotations

from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json
from seriesfeed.models import OutboxState

__all__ = [
    "backup_command", "bounces", "bounces_process", "digests", "digests_list", "digests_retry",
    "digests_show",
    "outbox", "outbox_list", "outbox_retry", "restore_command",
]


@cli.group()
def outbox() -> None:
    """Outbox rows: one per message, with its state."""


@outbox.command("list")
@click.option("--state", type=click.Choice([s.value for s in OutboxState]),
              help="Only rows in this state.")
@click.option("--digest", "digest_id", type=int, help="Only rows of this digest.")
@click.option("--email", default=None, help="Only rows to this address (any case).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def outbox_list(app: AppContext, state: str | None, digest_id: int | None, email: str | None,
                as_json: bool) -> None:
    """List outbox rows (oldest first)."""
    rows = actions.ops.list_outbox(app.store, app.config, state=state, digest_id=digest_id,
                                  email=email)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        why = f"  {r['smtp_code'] or ''} {r['last_error']}" if r["last_error"] else ""
        note = f"  [{r['note']}]" if r["note"] else ""
        click.echo(f"{r['id']:>7}  {r['state']:<8} digest {r['digest_id'] or '-':<5} "
                   f"{r['recipient']}  attempts {r['attempts']}  sent {r['sent_at'] or '-'}"
                   f"{why}{note}")
    click.echo(f"{len(rows)} rows")


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed row.")
@click.option("--digest", "digest_id", type=int, help="With --failed: only of this digest.")
@pass_app
def outbox_retry(app: AppContext, ids: tuple[int, ...], all_failed: bool,
                 digest_id: int | None) -> None:
    """Put failed rows (IDs, or every one with --failed) back to queued, with the same
    Message-ID; the next drain (the daemon's, or `digest send`) sends them."""
    if bool(ids) == all_failed:
        raise click.UsageError("give either row IDs or --failed")
    _retried(actions.ops.retry_outbox(app.store, list(ids) if ids else None,
                                      digest_id=digest_id))


def _retried(done: actions.ops.RetryResult) -> None:
    queued = done.queued
    click.echo(f"{len(queued)} rows queued again" + (f": {', '.join(map(str, queued))}"
                                                     if queued and len(queued) <= 20 else ""))
    for row in done.skipped:
        click.echo(f"  not retried: row {row['id']} to {row['recipient']}: {row['why']}")


@cli.group()
def digests() -> None:
    """Recorded digests: who got them, who did not."""


@digests.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def digests_list(app: AppContext, as_json: bool) -> None:
    """List digests with their recipients and what was sent, failed and pending."""
    found = actions.ops.list_digests(app.store, app.config)
    if as_json:
        print_json(found)
        return
    for d in found:
        click.echo(f"{d['id']:>5}  {d['language']} {d['frequency']:<6} {d['period']:<14} "
                   f"{d['recipients']} recipients: {d['sent']} sent, {d['failed']} failed, "
                   f"{d['pending']} pending  first {d['first_sent_at'] or '-'}  last "
                   f"{d['last_sent_at'] or '-'}")
    click.echo(f"{len(found)} digests")


@digests.command("show")
@click.argument("digest_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def digests_show(app: AppContext, digest_id: int, as_json: bool) -> None:
    """One digest: its figures and every recipient it was not (yet) sent to, with why."""
    d = actions.ops.show_digest(app.store, app.config, digest_id)
    if as_json:
        print_json(d)
        return
    click.echo(f"digest {d['id']}: {d['language']} {d['frequency']} {d['period']} "
               f"(entries {d['from_seq'] + 1}-{d['to_seq']}), recorded {d['created_at']}")
    click.echo(f"{d['recipients']} recipients: {d['sent']} sent, {d['failed']} failed, "
               f"{d['pending']} pending; first sent {d['first_sent_at'] or '-'}, last "
               f"{d['last_sent_at'] or '-'}")
    for r in d["not_sent"]:
        click.echo(f"  {r['id']:>7}  {r['state']:<8} {r['recipient']}  "
                   f"{r['smtp_code'] or ''} {r['error'] or ''}".rstrip())


@digests.command("retry")
@click.argument("digest_id", type=int)
@pass_app
def digests_retry(app: AppContext, digest_id: int) -> None:
    """Put the digest's failed rows back to queued, with their Message-IDs (as `outbox
    retry --failed --digest ID`); recipients erased, suppressed or no longer subscribed
    are skipped and named. The next drain (the daemon's, or `digest send`) sends them."""
    _retried(actions.ops.retry_digest(app.store, digest_id))


@cli.group()
def bounces() -> None:
    """Bounce and complaint reports that arrive after delivery."""


@bounces.command("process")
@click.argument("path", type=click.Path(path_type=Path))
@pass_app
def bounces_process(app: AppContext, path: Path) -> None:
    """Read DSNs (RFC 3464, and the common MTAs' own formats) and ARF complaint reports
    (RFC 5965) from PATH: a Maildir (its unseen messages, marked seen after), an mbox, a
    file, or a folder of files. Only reports carrying a valid VERP token change anything."""
    click.echo(str(actions.ops.process_bounces(app.store, app.config, path)))


@cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def backup_command(app: AppContext, file: Path) -> None:
    """Copy a SQLite store to FILE, consistently, even while the daemon runs (SQLite's
    online backup API). For PostgreSQL use pg_dump (see the README)."""
    size = actions.ops.backup_store(app.store, file)
    click.echo(f"Backed up {app.store.describe()} to {file} ({size} bytes)")


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def restore_command(app: AppContext, file: Path) -> None:
    """Replace the SQLite store with the backup FILE; refused while a daemon runs on it.
    Rows the backup holds as not sent are sent by the next drain, with the Message-IDs
    they always had."""
    revision = actions.ops.restore_store(app.store, file)
    click.echo(f"Restored {file} (schema {revision}) into {app.store.describe()}")
