"""Every message we send, from plain data; no store, no connection.

- The digest (``render_digest_mail``): from its entries, their series and translations, the
  subject, the text and HTML parts with markers for each recipient's links, and the prebuilt
  template; ``digest_message`` fills it for one recipient (the fast byte path).
- The confirmation mail of one pending subscriber (``confirmation_message``).
- A back-catalogue part for a reader catching up: the digest of that one entry, said as
  "Part 2 of 18 · 16 still to come" (``render_digest_mail(..., catch_up=True)``).
- The welcome mail after a reader confirms (``welcome_message``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from seriesfeed import emails, i18n, tokens
from seriesfeed.addresses import mask_address
from seriesfeed.config import Config
from seriesfeed.models import Entry, Frequency, Series
from seriesfeed.qp import PreparedBody
from seriesfeed.text import html_to_text, sanitize_html

__all__ = [
    "PREFERENCES",
    "UNSUBSCRIBE",
    "Recipient",
    "Rendered",
    "Welcome",
    "confirmation_message",
    "digest_message",
    "digest_subject",
    "feedback_id",
    "manage_message",
    "render_digest_mail",
    "welcome_message",
    "welcome_texts",
]

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
                       translations: dict[str, list[dict[str, str]]], *,
                       catch_up: bool = False, view_url: str | None = None,
                       web: bool = False, to_come: int | None = None) -> Rendered | None:
    """The digest of ``found`` (in digest order) in ``language``; None when it is empty.
    ``catch_up``: one back-catalogue part, its subject and heading naming the part;
    ``view_url``: the digest's public page, linked at the top; ``web``: that page itself,
    whose footer says where each reader's own links are instead of holding any.
    ``to_come``: how many later parts a catch-up reader still gets (their language's, not
    the series' count)."""
    if not found:
        return None
    slugs = {e.series for e in found}
    title = i18n.site_texts(config, language).title
    if len(slugs) == 1:
        s = all_series[next(iter(slugs))]
        text = s.texts.get(language) or s.texts.get(config.site.default_language)
        title = text.title if text else title
    subject = digest_subject(config, language, title, len(found))
    _ = i18n.messages_for(config, language)
    still = None
    first = found[0]
    if catch_up and first.part and first.parts:
        subject = _("{title}: part {part} of {n}", title=title, part=first.part, n=first.parts)
        later = first.parts - first.part if to_come is None else to_come
        still = _("{n} still to come", n=later) if later > 0 else _("the last part so far")
    locale = config.languages[language].locale
    local = config.site.article_pages == "local"
    full = config.feeds.content == "full"

    def translated(t: dict[str, str]) -> dict[str, str]:
        if local and t.get("path"):
            return {**t, "url": config.public_url + t["path"]}
        return t

    items = [{"title": e.title, "url": e.link(config.public_url, local),
              "summary": e.summary, "authors": e.authors,
              "published": e.published.astimezone(config.zone), "language": e.language,
              "language_name": i18n.language_name(e.language, locale),
              "part": e.part, "parts": e.parts,
              # the store's body is sanitised on import; again here (the template shows it
              # unescaped), as a mail client is a browser too
              "content_html": sanitize_html(e.content_html) if full and e.content_html
              else None,
              "content_text": html_to_text(e.content_html) if full and e.content_html else None,
              "translations": [translated(t) for t in translations.get(e.id or "", [])]}
             for e in found]
    text_body, html = emails.render_email(config, language, "digest", {
        "heading": subject, "entries": items, "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": PREFERENCES, "still_to_come": still, "view_url": view_url,
        "web": web})
    label = _("{site} digest", site=emails.safe_display_name(
        i18n.site_texts(config, language).title) or "seriesfeed")
    template = emails.fast_template(config, subject, (
        # the list's name in the list's language; its id stays one per site
        # (RFC 2919 allows an encoded phrase: "Boletín" must not make the mail 8-bit)
        # (unfolded: a long label in another script is several encoded words, which a
        # line break between them would make a value every message is refused for)
        ("List-Id", emails.encode_header_value(emails.safe_display_name(label) or "Digest",
                                               folded=False)
         + f" <digest.{emails.message_domain(config)}>"),
        ("Content-Language", language),
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


@dataclass(frozen=True)
class Recipient:
    """Whom one message of a digest goes to, and the digest it belongs to."""

    subscriber_id: int
    email: str
    name: str | None
    message_id: str
    digest_id: int | None
    language: str


def digest_message(config: Config, key: bytes, to: Recipient, rendered: Rendered,
                   signer: emails.DkimSigner | None = None) -> bytes:
    """One recipient's digest from the group's prebuilt template: their links and headers."""
    token = tokens.make_token(key, tokens.Purpose.UNSUBSCRIBE, to.subscriber_id)
    link = f"{config.public_url}/unsubscribe/{token}"
    unsubscribe = f"<{link}>"
    if config.mail.unsubscribe_mailto:  # tokens are URL-safe base64: no escaping needed
        unsubscribe += (f", <mailto:{config.mail.unsubscribe_mailto}"
                        f"?subject=unsubscribe%20{token}>")
    values = {UNSUBSCRIBE: link,
              PREFERENCES: tokens.preferences_link(config, key, to.subscriber_id)}
    headers = (("List-Unsubscribe", unsubscribe),
               # Gmail's feedback loop: digest and list, never the address
               ("Feedback-ID", feedback_id(config, to.digest_id, to.language)))
    text, html = rendered.text_qp.encode_wire(values), rendered.html_qp.encode_wire(values)
    if text is not None and html is not None:  # proven CRLF-only as built: sent unscanned
        data = rendered.template.build_wire(to_email=to.email, to_name=to.name,
                                            message_id=to.message_id, text=text, html=html,
                                            per_recipient_headers=headers)
    else:
        data = rendered.template.build_encoded(
            to_email=to.email, to_name=to.name, message_id=to.message_id,
            text_qp=rendered.text_qp.encode(values), html_qp=rendered.html_qp.encode(values),
            per_recipient_headers=headers)
    return signer.sign(data) if signer else data


def feedback_id(config: Config, digest_id: int | None, language: str) -> str:
    """Gmail's Feedback-ID (campaign:customer:type:sender): the digest, the list's
    language and the list's domain (its List-Id), never the address."""
    domain = emails.message_domain(config)
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"digest{digest_id or 0}:{language}:digest:{domain}"


def confirmation_message(config: Config, key: bytes, subscriber_id: int, email: str,
                         language: str, sent_at: datetime, message_id: str,
                         series: tuple[str, ...] = ()) -> bytes:
    """The confirmation mail of one pending subscriber, as bytes for the transport. It
    says what was asked for (``series``, their titles; none: every series), for which
    address (masked, as the confirm page shows it) and when (``sent_at``, the ask's
    time, in the site's zone), so a reader who did not ask can tell at a glance."""
    lang = language if language in config.languages else config.site.default_language
    locale = config.languages[lang].locale or lang if lang in config.languages else lang
    text, html = emails.render_email(config, lang, "confirm", {
        "confirm_url": tokens.confirm_link(config, key, subscriber_id, sent_at),
        "series": list(series), "address": mask_address(email),
        "asked_at": i18n.format_moment(sent_at, locale, config.zone)})
    _ = i18n.messages_for(config, lang)
    subject = _("Confirm your subscription to {site}", site=i18n.site_texts(config, lang).title)
    # no name in the headers of confirmation mail: it is unverified input (invariant 6)
    msg = emails.build_message(sender=emails.sender_address(config), to_email=email,
                               to_name=None, subject=subject, text=text, html=html,
                               message_id=message_id, headers={"Content-Language": lang})
    return emails.message_bytes(msg)


@dataclass(frozen=True)
class Welcome:
    """What a welcome mail (and the confirmed page) tells a reader: the series they follow
    (title, page URL), their frequency, when the next slot fires, the first back-catalogue
    part they will get (None: only new parts), and the digest archive when it is on."""

    language: str
    frequency: Frequency
    series: list[tuple[str, str]]
    next_at: datetime | None
    first_part: int | None
    archive_url: str | None = None


def welcome_texts(config: Config, about: Welcome) -> list[str]:
    """The welcome's sentences in the reader's language (the mail and the confirmed page)."""
    _ = i18n.messages_for(config, about.language)
    fns = i18n.template_functions(config, about.language)
    out = []
    titles = ", ".join(title for title, _url in about.series)
    if titles:
        out.append(_("You now follow {series}.", series=titles))
    if about.next_at is not None:
        day = fns["format_date"](about.next_at)  # type: ignore[operator]
        hour = fns["format_time"](about.next_at)  # type: ignore[operator]
        if about.first_part is not None and about.frequency is Frequency.DAILY:
            out.append(_("Part {part} arrives on {date} at {time}, then one more part each "
                         "day, and new parts as they are published.",
                         part=about.first_part, date=day, time=hour))
        elif about.first_part is not None:
            out.append(_("Part {part} arrives on {date} at {time}, then one more part each "
                         "week, and new parts as they are published.",
                         part=about.first_part, date=day, time=hour))
        elif about.frequency is Frequency.DAILY:
            out.append(_("New parts come in a daily digest; the next one is due on {date} "
                         "at {time}, if there is something new.", date=day, time=hour))
        else:
            out.append(_("New parts come in a weekly digest; the next one is due on {date} "
                         "at {time}, if there is something new.", date=day, time=hour))
    return out


def welcome_message(config: Config, key: bytes, subscriber_id: int, email: str,
                    message_id: str, about: Welcome) -> bytes:
    """The welcome mail of a reader who has just confirmed, as bytes for the transport."""
    lang = about.language
    _ = i18n.messages_for(config, lang)
    text, html = emails.render_email(config, lang, "welcome", {
        "lines": welcome_texts(config, about), "series": about.series,
        "archive_url": about.archive_url,
        "preferences_url": tokens.preferences_link(config, key, subscriber_id)})
    subject = _("Welcome to {site}", site=i18n.site_texts(config, lang).title)
    msg = emails.build_message(sender=emails.sender_address(config), to_email=email,
                               to_name=None, subject=subject, text=text, html=html,
                               message_id=message_id, headers={"Content-Language": lang})
    return emails.message_bytes(msg)


def manage_message(config: Config, key: bytes, subscriber_id: int, email: str, language: str,
                   message_id: str) -> bytes:
    """The preferences link someone asked for on the manage page, to the address only."""
    lang = language if language in config.languages else config.site.default_language
    _ = i18n.messages_for(config, lang)
    text, html = emails.render_email(config, lang, "manage", {
        "preferences_url": tokens.preferences_link(config, key, subscriber_id)})
    subject = _("Your preferences at {site}", site=i18n.site_texts(config, lang).title)
    msg = emails.build_message(sender=emails.sender_address(config), to_email=email,
                               to_name=None, subject=subject, text=text, html=html,
                               message_id=message_id, headers={"Content-Language": lang})
    return emails.message_bytes(msg)
