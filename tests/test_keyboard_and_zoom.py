"""Every action on the reader's pages works from the keyboard, with a focus indicator one
can see; text enlarged to 200 % on a 390 px phone needs no sideways scrolling and clips
nothing; and a reader who asks for less motion gets none. In headless chromium, on the
series page, the subscribe form and the confirm, preferences and unsubscribe pages.

The fast tier walks English; ``--full`` walks every configured language.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import figures
from tests.test_accessibility import ARGS, CHROMIUM, SERIES, World, _links, playwright_api

# the shared live site (the "as" form re-exports it, so pytest finds the fixture here)
from tests.test_accessibility import world as world

pytestmark = pytest.mark.browser

# what a reader can act on: links, buttons and fields (not hidden ones, not the honeypot,
# which is out of the tab order on purpose). A radio group is one stop: Tab reaches its
# checked button and the arrow keys move within it, so the others are not Tab's to reach
ACTIONABLE = """() => [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea')]
  .filter(e => e.tabIndex >= 0 && !e.closest('[aria-hidden=true]')
               && e.getClientRects().length > 0
               && !(e.type === 'radio' && !e.checked && e.form
                    && [...e.form.elements].some(o => o.type === 'radio'
                                                     && o.name === e.name && o.checked)))"""

OUTLINE = """e => { const s = getComputedStyle(e);
  return [s.outlineStyle, parseFloat(s.outlineWidth) || 0, s.outlineColor]; }"""


def _languages(world: World) -> list[str]:
    return list(world.config.languages) if figures.FULL else ["en"]


def _pages(world: World, lang: str, tag: str) -> list[tuple[str, str]]:
    links = _links(world, lang, tag)
    return [("series", f"{world.base}/{lang}/{SERIES}/"),
            ("subscribe", f"{world.base}/subscribe?lang={lang}"),
            ("confirm", links["confirm"]), ("preferences", links["preferences"]),
            ("unsubscribe", links["unsubscribe"])]


def _tab_through(page: Any) -> list[str]:
    """Tab from the top through the page: what each actionable element's focus looked like,
    as failures (an empty list: every one reached, each with a visible indicator)."""
    count = page.evaluate(f"() => {{ const all = ({ACTIONABLE})();"
                          " all.forEach((e, i) => e.dataset.k = i); return all.length; }")
    assert count > 0
    unfocused = page.evaluate(f"() => ({ACTIONABLE})().map({OUTLINE})")
    reached: dict[int, Any] = {}
    for _ in range(count + 10):
        page.keyboard.press("Tab")
        found = page.evaluate(f"""() => {{ const e = document.activeElement;
            if (!e || e.dataset.k === undefined) return null;
            return [Number(e.dataset.k), ({OUTLINE})(e), e.matches(':focus-visible')]; }}""")
        if found is not None:
            reached.setdefault(found[0], found[1:])
    problems = []
    for k in range(count):
        if k not in reached:
            what = page.evaluate(f"() => ({ACTIONABLE})()[{k}].outerHTML.slice(0, 120)")
            problems.append(f"never reached by Tab: {what}")
            continue
        (style, width, color), visible = reached[k]
        before = unfocused[k]
        if style == "none" or width < 2 or (style, width, color) == tuple(before):
            problems.append(f"element {k}: focus outline {style} {width}px {color}, "
                            f"unfocused {before}, :focus-visible={visible}")
    return problems


def test_every_action_is_reachable_by_tab_with_a_visible_focus(world: World) -> None:
    failures: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for lang in _languages(world):
                context = browser.new_context(locale=lang, viewport={"width": 1280,
                                                                     "height": 900})
                page = context.new_page()
                for name, url in _pages(world, lang, f"tab-{lang}"):
                    page.goto(url)
                    failures += [f"{lang} {name}: {p}" for p in _tab_through(page)]
                context.close()
        finally:
            browser.close()
    assert not failures, "\n".join(failures)


OVERFLOW = """() => {
  const root = document.documentElement;
  const out = [];
  if (root.scrollWidth > root.clientWidth)
    out.push(`page scrolls sideways: ${root.scrollWidth} > ${root.clientWidth}`);
  for (const e of document.body.querySelectorAll('*')) {
    const s = getComputedStyle(e);
    if (s.display === 'inline' || e.clientWidth === 0 || e.closest('.hp')) continue;
    if (e.scrollWidth > e.clientWidth + 1)
      out.push(`${e.tagName.toLowerCase()}.${e.className}: text ${e.scrollWidth}px in `
               + `${e.clientWidth}px: ${e.textContent.trim().slice(0, 60)}`);
  }
  return out;
}"""


def test_text_at_200_percent_on_a_phone_needs_no_sideways_scrolling(world: World) -> None:
    failures: list[str] = []
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for lang in _languages(world):
                context = browser.new_context(locale=lang, viewport={"width": 390,
                                                                     "height": 844})
                page = context.new_page()
                for name, url in _pages(world, lang, f"zoom-{lang}"):
                    page.goto(url)
                    assert page.evaluate(OVERFLOW) == [], name  # fine at 100 % first
                    # the browser's text-size setting: every rem and em grows with it
                    page.evaluate("() => document.documentElement.style.fontSize = '200%'")
                    size = page.evaluate("() => parseFloat(getComputedStyle("
                                         "document.querySelector('main p, main h1')).fontSize)")
                    assert size >= 32, (name, size)  # the text did grow
                    failures += [f"{lang} {name}: {p}" for p in page.evaluate(OVERFLOW)]
                context.close()
        finally:
            browser.close()
    assert not failures, "\n".join(failures)


MOTION = """() => [...document.querySelectorAll('*')].map(e => {
  const s = getComputedStyle(e);
  const moving = s.transitionDuration.split(',').some(d => parseFloat(d) > 0)
              || s.animationName !== 'none';
  return moving ? e.tagName.toLowerCase() + '.' + e.className : null; }).filter(Boolean)"""


def test_reduced_motion_is_respected(world: World) -> None:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            seen: dict[str, list[str]] = {}
            for motion in ("no-preference", "reduce"):
                context = browser.new_context(reduced_motion=motion)
                page = context.new_page()
                moving: list[str] = []
                for name, url in _pages(world, "en", f"motion-{motion}"):
                    page.goto(url)
                    moving += [f"{name}: {m}" for m in page.evaluate(MOTION)]
                seen[motion] = moving
                context.close()
        finally:
            browser.close()
    assert seen["no-preference"], "nothing moves at all: the check below would prove nothing"
    assert seen["reduce"] == [], seen["reduce"]
