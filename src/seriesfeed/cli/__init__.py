"""The ``seriesfeed`` command: thin click commands that parse arguments and call actions.

Each command group lives in its own module of this package; this one holds the root
group, the shared context (config and store, opened lazily) and the error boundary that
turns a SeriesfeedError into ``Error: <message>`` and an exit code.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from seriesfeed import actions, stopping
from seriesfeed.errors import SeriesfeedError

if TYPE_CHECKING:
    from seriesfeed.actions import Store
    from seriesfeed.config import Config

__all__ = ["COMMAND_MODULES", "AppContext", "cli", "init", "load_commands", "main", "pass_app",
           "print_json"]


@dataclass
class AppContext:
    config_path: Path | None
    _config: Config | None = None
    _store: Store | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def config(self) -> Config:
        if self._config is None:
            # here, not at the top: `seriesfeed --help` reads no config (and babel is
            # only for a command that does)
            from seriesfeed import i18n
            from seriesfeed.config import load_config

            config = load_config(self.config_path)
            i18n.check_languages(config)
            self._config = config
        return self._config

    @property
    def store(self) -> Store:
        """The store, migrated to the newest schema on first use. A read-only command
        (:data:`READ_ONLY`) never creates it: a missing SQLite file is a one-line error."""
        if self._store is None:
            self._store = actions.open_store(self.config, create=not _read_only_command())
            self.cleanups.append(self._store.close)
        return self._store

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


pass_app = click.make_pass_decorator(AppContext)

# the commands that only read the store: on a deleted SQLite file they say so (exit 1)
# instead of making a new empty store and reporting it healthy; every other command
# (init, import, run, serve, restore and the writes) creates the store it needs
READ_ONLY = frozenset({
    "status", "check", "backup", "entries list", "entries show", "entries export",
    "series list", "series show", "sources list", "subscribers list", "subscribers export",
    "outbox list", "digests list", "digests show", "digest preview", "feeds build",
    "sources history", "subscribers show", "admin log", "charts"})


def _read_only_command() -> bool:
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    # the command path starts with the program's name, whatever it was invoked as
    return " ".join(ctx.command_path.split()[1:]) in READ_ONLY

# the commands that keep running until told to stop: their event loop takes over the stop
# signals that were deferred from the first line (seriesfeed.stopping)
DAEMONS = ("run", "serve")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def write_file(out: Path, data: bytes) -> None:
    """Write a command's ``--out`` file whole or not at all (a temporary file beside it,
    then a rename), so a full disk never leaves half an export behind."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from exc


# The module of each command of the root group. A command's module is imported when the
# command is called, so `feeds build` pays for its own imports and not for the daemon's or
# the subscriber CSV's; `seriesfeed --help` lists them all, so it imports every one (each
# imports only click and the lazy verbs at its top). tests/test_cli_help.py checks this
# map names every command and its text is unchanged.
COMMAND_MODULES: dict[str, str] = {
    "admin": "admin", "backup": "ops", "bounces": "ops", "charts": "charts",
    "check": "check", "digest": "digest", "digests": "ops", "entries": "entries",
    "feeds": "feeds", "i18n": "catalogues", "import": "entries", "outbox": "ops",
    "restore": "ops", "run": "daemon", "series": "series", "serve": "feeds",
    "sources": "sources", "status": "daemon", "subscribers": "subscribers",
}


def load_commands() -> None:
    """Import every command module (each registers its commands on the root group)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"seriesfeed.cli.{module}")


class _CommandsOnDemand(click.Group):
    """The root group: a command's module is imported when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = COMMAND_MODULES.get(cmd_name)
            if module is None:  # a typo: every name known, for click's "Did you mean"
                load_commands()
            else:
                importlib.import_module(f"seriesfeed.cli.{module}")
        return self.commands.get(cmd_name)


@click.group(cls=_CommandsOnDemand,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="SERIESFEED_CONFIG", default=None,
              help="config.toml to use (default: ./config.toml; built-in defaults if absent).")
@click.version_option(package_name="seriesfeed")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """seriesfeed: feeds and email digests for an article series."""
    if ctx.invoked_subcommand not in DAEMONS:
        stopping.release()  # a one-shot command stops on a signal as it always did
    app = AppContext(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the store (or upgrade its schema) and check the configuration."""
    store = actions.open_store(app.config, migrate=False)
    app.cleanups.append(store.close)
    applied, revision = actions.migrate(store)
    done = f"applied {', '.join(applied)}" if applied else "already up to date"
    click.echo(f"Store {store.describe()}: schema {revision} ({done}).")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, map errors to a one-line message and an exit code."""
    try:
        cli.main(args=argv, prog_name="seriesfeed", standalone_mode=False)
    except SeriesfeedError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
