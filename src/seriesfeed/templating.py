"""The one Jinja2 environment factory, for email templates and web pages alike.

Autoescaping is on for every HTML template; ``.txt.j2`` templates are plain text.
Templates live in the project's ``templates/`` folder (``email/…``, ``web/…``): one set for
every language, whose words come from the catalogues. A language may override one in its
own folder (``email/<lang>/digest.html.j2``, ``web/<lang>/series.html.j2``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame

try:  # markupsafe's C escaping, without the Markup object its escape() wraps it in
    from markupsafe import _escape_inner  # type: ignore[attr-defined]
except ImportError:  # a markupsafe without it: its escape(), as a plain string
    def _escape_inner(value: str, /) -> str:
        return str(markupsafe.escape(value))

from seriesfeed.errors import ConfigError

__all__ = [
    "PACKAGE_TEMPLATES", "Template", "environment", "localized_template", "render",
    "stock_template", "template_exists", "templates_dir",
]

# src/seriesfeed/templating.py -> the project root's templates/
PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def templates_dir(configured: Path | None = None) -> Path:
    """The configured templates folder if it exists, else the one shipped with the project."""
    if configured is not None and configured.is_dir():
        return configured
    if PACKAGE_TEMPLATES.is_dir():
        return PACKAGE_TEMPLATES
    raise ConfigError(f"no templates folder at {configured or PACKAGE_TEMPLATES}")


def output_escape(value: object) -> str:
    """What a template's ``{{ … }}`` writes under autoescape: ``markupsafe.escape``'s
    text, as a plain string when the value is one. Jinja joins what a template writes
    into one string (and wraps a macro's or a block's output in ``Markup`` itself), so
    the ``Markup`` object ``escape`` makes for each value is thrown away at once: a
    twentieth of rendering 20,000 article pages."""
    if type(value) is str:
        return _escape_inner(value)
    return markupsafe.escape(value)


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``output_escape`` for the ``escape`` that compiled
    templates call on each value they write (bound at the end of the module, so every
    function of the template finds it)."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        super().visit_Template(node, frame)
        self.writeline("from seriesfeed.templating import output_escape as escape")


def _identity(filename: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(filename)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


class _Loader(jinja2.FileSystemLoader):
    """Jinja's file loader, whose templates are up to date while their file's identity
    (size, mtime, inode, change time) is unchanged, not only its mtime: a same-size edit
    with its mtime put back moves the pages' keys (``feeds.settings_key``), so a
    long-lived process (the daemon) must draw it too."""

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, _ = super().get_source(environment, template)
        seen = _identity(filename)
        return source, filename, lambda: _identity(filename) == seen


def _autoescape(name: str | None) -> bool:
    return bool(name) and not str(name).endswith((".txt.j2", ".txt"))


@lru_cache(maxsize=8)
def environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_Loader(str(folder)),
        autoescape=_autoescape,  # noqa: S701 - on for every template but *.txt.j2
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.code_generator_class = _CodeGenerator
    return env


def render(folder: Path, name: str, context: dict[str, Any]) -> str:
    """Render template ``name`` (relative to ``folder``); a missing template is a
    ConfigError naming it."""
    try:
        return environment(folder).get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"template {folder / name} is missing") from exc


class Template:
    """Template ``name`` (relative to ``folder``) looked up once, for rendering many
    times (``render`` looks it up on each call); missing, it is the same ConfigError."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = folder, name
        try:
            self.template = environment(folder).get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"template {folder / name} is missing") from exc

    def render(self, context: dict[str, Any]) -> str:
        try:
            return self.template.render(context)
        except jinja2.TemplateNotFound as exc:  # the one it extends
            raise ConfigError(f"template {self.folder / self.name} is missing") from exc


def stock_template(folder: Path, name: str) -> bool:
    """Template ``name`` in ``folder`` and every template it extends, includes or imports
    are the shipped ones, byte for byte: what a template writes is then known from the
    shipped text (``pages._respliced`` relies on where the article template writes the part
    numbers; an operator's template may write them anywhere). False for a template that
    names another by an expression, or that cannot be read."""
    seen: set[str] = set()
    names = [name]
    while names:
        name = names.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            text = (folder / name).read_bytes()
            if text != (PACKAGE_TEMPLATES / name).read_bytes():
                return False
            parsed = environment(PACKAGE_TEMPLATES).parse(text.decode("utf-8"))
        except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
            return False
        for found in meta.find_referenced_templates(parsed):
            if found is None:
                return False
            names.append(found)
    return True


def template_exists(folder: Path, name: str) -> bool:
    return (folder / name).is_file()


def localized_template(folder: Path, area: str, language: str, name: str) -> str:
    """``{area}/{language}/{name}`` when the language overrides the template, else
    ``{area}/{name}``."""
    own = f"{area}/{language}/{name}"
    return own if (folder / own).is_file() else f"{area}/{name}"
