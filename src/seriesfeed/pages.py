"""The series page per language: the list of articles, feed autodiscovery and the subscribe form."""

from __future__ import annotations

from seriesfeed import i18n
from seriesfeed.config import Config
from seriesfeed.feeds import EPOCH, HTML, FeedDocument, scopes
from seriesfeed.models import Entry, SiteData
from seriesfeed.templating import render, templates_dir


def build_pages(config: Config, site: SiteData) -> list[FeedDocument]:
    """The series pages of the site's data (the same read as the feeds')."""
    folder = templates_dir(config.resolve("templates"))
    docs: list[FeedDocument] = []
    by_scope: dict[tuple[str, str], list[Entry]] = {}
    for e in site.entries:
        by_scope.setdefault((e.language, e.series), []).append(e)
    for scope in scopes(config, site.series):
        if scope.series is None:
            continue
        lang = config.languages[scope.language]
        slug = scope.series.slug
        entries = by_scope.get((scope.language, slug), [])
        text = scope.series.texts.get(scope.language) or \
            scope.series.texts.get(config.site.default_language)
        updated = max((e.updated or e.published for e in entries), default=EPOCH)
        body = render(folder, "web/series.html.j2", {
            "_": i18n.translator(scope.language),
            "lang": scope.language,
            "languages": config.languages,
            "site": config.site,
            "public_url": config.public_url,
            "series": scope.series,
            "title": text.title if text else slug,
            "description": text.description if text else "",
            "entries": entries,
            "feed_base": config.public_url + scope.base_path,
            "format_date": lambda d, loc=lang.locale: i18n.format_date(
                d.astimezone(config.zone), loc),
        })
        docs.append(FeedDocument(f"/{scope.language}/{slug}/", HTML,
                                 body.encode("utf-8"), updated))
    return docs
