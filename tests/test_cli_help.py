"""Every command's ``--help`` text, and the usage errors of a mistyped command, are what
tests/data/cli_help.txt recorded: the whole tree, walked from ``seriesfeed --help`` down.

The record was made on a checkout whose command modules were all imported with the root
group, before they were loaded on demand: loading a command only when it is called must
change no word of any help text, no command's place in a listing and no "Did you mean"
of a typo. Regenerate (``REGENERATE_CLI_HELP=1``) for a change meant to alter a help
text, and the diff of the file is the review of the new wording.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

RECORD = Path(__file__).parent / "data" / "cli_help.txt"

# mistakes an operator makes: each prints a usage error (exit 2), some with a suggestion
MISTAKES = (["nosuch"], ["entrie", "list"], ["feeds", "nosuch"], ["entries", "lst"],
            ["--bogus"], ["status", "--bogus"], ["subscribers"])


def _paths(group: click.Group, ctx: click.Context, prefix: list[str]) -> list[list[str]]:
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join([*prefix, name])} is listed but not found"
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            sub = click.Context(command, info_name=name, parent=ctx)
            paths.extend(_paths(command, sub, [*prefix, name]))
    return paths


def _run(args: list[str]) -> str:
    from seriesfeed.cli import cli

    # a fixed width: the terminal the tests run in must not rewrap the text
    result = CliRunner().invoke(cli, args, prog_name="seriesfeed", terminal_width=80)
    return f"$ seriesfeed {' '.join(args)}   (exit {result.exit_code})\n{result.output}"


def _tree() -> str:
    from seriesfeed.cli import cli

    with click.Context(cli, info_name="seriesfeed") as ctx:
        paths = [[], *_paths(cli, ctx, [])]
    return "\n".join([*(_run([*p, "--help"]) for p in paths), *(_run(m) for m in MISTAKES)])


def test_every_help_text_and_usage_error_is_as_recorded() -> None:
    found = _tree()
    if os.environ.get("REGENERATE_CLI_HELP"):
        RECORD.write_text(found, encoding="utf-8")
        pytest.skip(f"regenerated {RECORD.name}")
    want = RECORD.read_text(encoding="utf-8")
    assert found.splitlines() == want.splitlines()


def test_the_root_group_knows_the_module_of_every_command() -> None:
    """A command missing from COMMAND_MODULES would be missing from `seriesfeed --help`
    and unknown to a process that had not imported its module for another reason."""
    import importlib
    import pkgutil

    import seriesfeed.cli
    from seriesfeed.cli import COMMAND_MODULES, cli

    # every module of the package, not load_commands(): that imports only the modules the
    # map names, so a new module left out of it would go unseen here too
    for module in pkgutil.iter_modules(seriesfeed.cli.__path__):
        importlib.import_module(f"seriesfeed.cli.{module.name}")
    found = {name: command.callback.__module__ if command.callback else "?"
             for name, command in cli.commands.items() if name != "init"}
    assert found == {name: f"seriesfeed.cli.{module}" for name, module in
                     COMMAND_MODULES.items()}
