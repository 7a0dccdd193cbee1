"""The web pages built with the feeds: a series page per language (the articles, feed
autodiscovery and the subscribe form) and a language index ``/{lang}/`` listing the series."""

from __future__ import annotations

from typing import Any

from seriesfeed import i18n
from seriesfeed.config import Config
from seriesfeed.feeds import EPOCH, HTML, FeedDocument, scopes, translations_for, with_fallback
from seriesfeed.models import Entry, Series, SiteData
from seriesfeed.templating import localized_template, render, templates_dir

__all__ = ["build_pages", "page_context", "render_page", "series_text"]


def page_context(config: Config, language: str) -> dict[str, Any]:
    """What every page template gets: the language's words and the site's texts in it."""
    return {
        **i18n.template_functions(config, language),
        "lang": language,
        "languages": config.languages,
        "site": config.site,
        "texts": i18n.site_texts(config, language),
        "public_url": config.public_url,
    }


def render_page(config: Config, language: str, name: str, context: dict[str, Any]) -> str:
    """Render ``web/{name}`` (or the language's own override) in ``language``."""
    folder = templates_dir(config.resolve("templates"))
    return render(folder, localized_template(folder, "web", language, name),
                  {**page_context(config, language), **context})


def series_text(config: Config, series: Series, language: str) -> tuple[str, str]:
    """The series' title and description in ``language``, else in the site's default."""
    text = series.texts.get(language) or series.texts.get(config.site.default_language) or \
        next(iter(series.texts.values()), None)
    return (text.title, text.description) if text else (series.slug, "")


def build_pages(config: Config, site: SiteData) -> list[FeedDocument]:
    """The series pages and language indexes of the site's data (the feeds' same read)."""
    docs: list[FeedDocument] = []
    everything = site.entries
    translations = translations_for(site)
    all_scopes = scopes(config, site.series)
    by_scope: dict[tuple[str, str | None], list[Entry]] = {}
    for e in everything:
        by_scope.setdefault((e.language, e.series), []).append(e)
    with_fallback(config, everything, translations, by_scope, series_only=True)
    listed: dict[str, list[dict[str, Any]]] = {code: [] for code in config.languages}
    for scope in all_scopes:
        if scope.series is None:
            continue
        slug = scope.series.slug
        entries = by_scope.get((scope.language, slug), [])
        title, description = series_text(config, scope.series, scope.language)
        updated = max((e.updated or e.published for e in entries), default=EPOCH)
        listed[scope.language].append({"slug": slug, "title": title,
                                       "description": description, "count": len(entries),
                                       "updated": updated})
        body = render_page(config, scope.language, "series.html.j2", {
            "series": scope.series,
            "title": title,
            "description": description,
            "entries": entries,
            "translations": translations,
            "feed_base": config.public_url + scope.base_path,
        })
        docs.append(FeedDocument(f"/{scope.language}/{slug}/", HTML,
                                 body.encode("utf-8"), updated))
    for code, series in listed.items():
        body = render_page(config, code, "language.html.j2", {"series": series})
        updated = max((s["updated"] for s in series), default=EPOCH)
        docs.append(FeedDocument(f"/{code}/", HTML, body.encode("utf-8"), updated))
    return docs
