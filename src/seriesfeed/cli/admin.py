"""``seriesfeed admin``: the operator's console's commands."""

from __future__ import annotations

import sys

import click

from seriesfeed import actions
from seriesfeed.cli import cli

__all__ = ["admin", "hash_password"]


@cli.group()
def admin() -> None:
    """The operator's console (README: "Operating")."""


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
