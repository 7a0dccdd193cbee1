"""``seriesfeed i18n check``: every configured language has every message translated (the
module is not named i18n, which would shadow ``seriesfeed.i18n`` in the cli package)."""

from __future__ import annotations

import click

from seriesfeed.cli import AppContext, cli, pass_app
from seriesfeed.errors import ConfigError

__all__ = ["check_command", "i18n_group"]


@cli.group("i18n")
def i18n_group() -> None:
    """Message catalogues of the configured languages."""


@i18n_group.command("check")
@pass_app
def check_command(app: AppContext) -> None:
    """Fail on a message of the template (locale/seriesfeed.pot) that a configured
    language's catalogue lacks, or whose plural forms or placeholders are wrong."""
    from seriesfeed import i18n  # babel: not for `seriesfeed --help`

    problems = i18n.check_catalogues(app.config)
    for problem in problems[1:]:
        click.echo(problem, err=True)
    if problems:
        raise ConfigError(f"{len(problems)} catalogue problems; first: {problems[0]}")
    checked = [c for c in app.config.languages if c.split("-")[0] != i18n.SOURCE_LANGUAGE]
    click.echo(f"{len(i18n.template_ids())} messages, all translated in "
               f"{', '.join(checked) or 'no language but English'}")
