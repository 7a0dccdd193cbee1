"""The digest mail, from plain data (the entries, their series and translations): the
subject, the text and HTML parts with markers for each recipient's links, and the prebuilt
template the sender fills per recipient. No store, no connection."""

from __future__ import annotations

from dataclasses import dataclass

from seriesfeed import emails, i18n
from seriesfeed.config import Config
from seriesfeed.models import Entry, Series
from seriesfeed.qp import PreparedBody

__all__ = ["PREFERENCES", "UNSUBSCRIBE", "Rendered", "digest_subject", "render_digest_mail"]

UNSUBSCRIBE = "SERIESFEED-UNSUBSCRIBE-URL"
PREFERENCES = "SERIESFEED-PREFERENCES-URL"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    count: int
    template: emails.FastTemplate
    # the bodies quoted-printable once; only the lines with a link are encoded per message
    text_qp: PreparedBody
    html_qp: PreparedBody


def render_digest_mail(config: Config, language: str, found: list[Entry],
                       all_series: dict[str, Series],
                       translations: dict[str, list[dict[str, str]]]) -> Rendered | None:
    """The digest of ``found`` (in digest order) in ``language``; None when it is empty."""
    if not found:
        return None
    slugs = {e.series for e in found}
    title = i18n.site_texts(config, language).title
    if len(slugs) == 1:
        s = all_series[next(iter(slugs))]
        text = s.texts.get(language) or s.texts.get(config.site.default_language)
        title = text.title if text else title
    subject = digest_subject(config, language, title, len(found))
    locale = config.languages[language].locale
    items = [{"title": e.title, "url": e.url, "summary": e.summary, "authors": e.authors,
              "published": e.published.astimezone(config.zone), "language": e.language,
              "language_name": i18n.language_name(e.language, locale),
              "translations": translations.get(e.id or "", [])} for e in found]
    text_body, html = emails.render_email(config, language, "digest", {
        "heading": subject, "entries": items, "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": PREFERENCES})
    template = emails.fast_template(config, subject, (
        ("List-Id", f"{emails.safe_display_name(config.site.title) or 'Digest'} digest "
                    f"<digest.{emails.message_domain(config)}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))
    markers = (UNSUBSCRIBE, PREFERENCES)
    return Rendered(subject, text_body, html, len(found), template,
                    PreparedBody(text_body, markers), PreparedBody(html, markers))


def digest_subject(config: Config, language: str, title: str, n: int) -> str:
    """The configured subject for the language, else the catalogue's plural-aware one."""
    lang = config.languages[language]
    custom = lang.digest_subject_one if n == 1 else lang.digest_subject
    if custom:
        return custom.format(title=title, n=n)
    return i18n.messages_for(config, language).ngettext(
        "{title}: {n} new article", "{title}: {n} new articles", n, title=title)
