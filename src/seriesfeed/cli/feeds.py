"""``seriesfeed feeds build`` and ``seriesfeed serve``."""

from __future__ import annotations

from pathlib import Path

import click

from seriesfeed import actions
from seriesfeed.cli import AppContext, cli, pass_app

__all__ = ["build", "feeds", "serve"]


@cli.group()
def feeds() -> None:
    """Build the feeds and series pages."""


@feeds.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write to (default: [feeds] out_dir).")
@pass_app
def build(app: AppContext, out: Path | None) -> None:
    """Write every feed and series page under DIR, mirroring their URLs
    (DIR/feeds/en/atom.xml, DIR/es/<series>/index.html, ...); only changed files are written."""
    out_dir = out or app.config.resolve(app.config.feeds.out_dir)
    report = actions.build_feeds(app.store, app.config, out_dir)
    click.echo(str(report))


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host).")
# not 0: the kernel would pick a port that no link (built from the port given) names
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: [web] port).")
@pass_app
def serve(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the web app only (feeds, pages, subscribe flow), without the scheduler."""
    import asyncio  # here, not at the top: `feeds build` runs no event loop

    from seriesfeed.web.embedded import serve_forever

    # every self link, page link and Link header is built from this config's public_url
    config = app.config.listening_on(host, port)
    # logged when it fails; /healthz then answers "down" from the first request
    actions.check_health(config, app.store)
    asyncio.run(serve_forever(config, app.store))
