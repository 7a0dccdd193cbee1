"""The ``seriesfeed`` console script: stop signals are deferred before the command line's
imports (the daemon's whole stack), so a daemon stopped while it starts exits cleanly."""

from __future__ import annotations

from seriesfeed import stopping

__all__ = ["main"]


def main() -> int:
    stopping.defer()
    from seriesfeed.cli import main as cli_main

    return cli_main()
