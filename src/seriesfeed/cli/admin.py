"""``seriesfeed admin …``: the operator's console from the command line (its password hash
and its audit log)."""

from __future__ import annotations

import sys

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app, print_json

__all__ = ["admin", "hash_password", "log_command"]


@cli.group()
def admin() -> None:
    """The operator's console (README: "Operating"): its password hash and audit log."""


def _read_password() -> str:
    """From a terminal without echo (asked twice, so a typo is not locked in); piped, the
    first line without its line ending."""
    if sys.stdin.isatty():
        entered: str = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                    err=True, default="", show_default=False)
        return entered
    return sys.stdin.readline().removesuffix("\n").removesuffix("\r")


@admin.command("hash-password")
def hash_password() -> None:
    """Read a password on stdin and print its hash for [admin] password_hash (or
    SERIESFEED_ADMIN_PASSWORD_HASH)."""
    click.echo(actions.console.hash_new_password(_read_password()))


@admin.command("log")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many rows, newest first.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.option("--action", default=None, help="Only rows of this action.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def log_command(app: AppContext, limit: int, offset: int, action: str | None,
                as_json: bool) -> None:
    """The audit trail, newest first: who did what, to what, from where, and whether it
    worked (console actions and logins, and the CLI's `subscribers unsuppress|set`)."""
    found = actions.audit.log(app.store, limit=limit, offset=offset, action=action)
    if as_json:
        print_json([e.to_json(app.config.zone) for e in found])
        return
    for e in found:
        j = e.to_json(app.config.zone)
        who = e.account + (f" ({e.address})" if e.address else "")
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        click.echo(f"{j['at']}  {who}  {e.action}  {e.target or '-'}  "
                   f"{'ok' if e.ok else 'FAILED'}" + (f"  {detail}" if detail else ""))
    click.echo(f"{len(found)} rows")
