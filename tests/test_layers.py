"""The layers keep their shape: read every module's imports (ast, so imports inside functions
and under TYPE_CHECKING count too) and fail on

- SQLAlchemy (or Alembic) imported outside ``store/``;
- a shell (``cli/``, ``web/``, ``daemon.py``, ``scheduler.py``) importing ``store/``;
- rendering (feeds, pages, messages, templates) importing ``store/``;
- any other module but the verbs (``actions/``) importing ``store/``: a transaction is a
  verb's, so what is not a verb takes plain data;
- a verb importing a shell;
- a third-party library imported by any module but its one owner (``OWNERS``);
- a shell importing one of our modules other than the verbs (``actions``), ``config``,
  ``models``, ``errors`` and its own package, beyond the explicit ``SHELL_ALLOWED`` list.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "seriesfeed"

# top-level import name -> the one module (or package, ending in '.') that may import it;
# a tuple only where a second owner is explained beside it. Libraries only tests import
# (pytest, hypothesis, aiosmtpd, time_machine, faker) have no owner on purpose: a module
# under src/ importing one is reported as "a library with no owner"
OWNERS: dict[str, str | tuple[str, ...]] = {
    "sqlalchemy": "seriesfeed.store.",
    "alembic": "seriesfeed.store.",
    "feedgen": "seriesfeed.feeds",
    "jinja2": "seriesfeed.templating",
    "markupsafe": "seriesfeed.templating",  # Jinja's escaping, which templates call
    "css_inline": "seriesfeed.emails",
    "dkim": "seriesfeed.emails",
    "aiosmtplib": "seriesfeed.mailer",
    "apscheduler": "seriesfeed.schedules",
    "starlette": "seriesfeed.web.",
    "uvicorn": "seriesfeed.web.embedded",
    "h11": "seriesfeed.web.embedded",
    "click": "seriesfeed.cli.",
    "rich": "seriesfeed.cli.digest",
    "httpx2": "seriesfeed.fetch",
    "prometheus_client": "seriesfeed.metrics",
    "flufl": "seriesfeed.actions.bounces",
    "babel": "seriesfeed.i18n",
    "nh3": "seriesfeed.text",
    "email_validator": "seriesfeed.addresses",
    "feedparser": "seriesfeed.importers.feedfile",
    "defusedxml": "seriesfeed.importers.feedfile",
    "inscriptis": "seriesfeed.importers.htmlpage",
    # the HTML importer parses with lxml; feeds.py serialises the lxml elements feedgen (built
    # on lxml) makes for each entry, once per build, rather than through feedgen's writer
    "lxml": ("seriesfeed.importers.htmlpage", "seriesfeed.feeds"),
}

SHELLS = ("seriesfeed.cli.", "seriesfeed.web.", "seriesfeed.daemon", "seriesfeed.scheduler")
RENDERING = ("seriesfeed.feeds", "seriesfeed.pages", "seriesfeed.emails", "seriesfeed.templating",
             "seriesfeed.publish", "seriesfeed.messages")
# i18n too: formatting a verb's result in the reader's language is the shell's job
# stopping: the stop signals deferred from a process's first line, which only shells own
SHELL_MAY_IMPORT = ("seriesfeed.actions.", "seriesfeed.config", "seriesfeed.models",
                    "seriesfeed.errors", "seriesfeed.clock", "seriesfeed.i18n",
                    "seriesfeed.stopping")
# (shell, module) pairs still allowed, each with why. Shrink it; never grow it silently.
SHELL_ALLOWED: dict[tuple[str, str], str] = {
    ("seriesfeed.web.localized", "seriesfeed.pages"): "error pages render like every page",
    ("seriesfeed.web.subscribe", "seriesfeed.pages"): "the subscribe pages render like every "
                                                       "page (one page context)",
    ("seriesfeed.web.admin.base", "seriesfeed.pages"): "console pages render like every page "
                                                       "(one page context)",
    ("seriesfeed.web.admin.dashboard", "seriesfeed.svgcharts"): "the dashboard draws its charts "
                                                            "from a verb's numbers",
    ("seriesfeed.cli.daemon", "seriesfeed.logs"): "the daemon's log set-up is the shell's job",
    ("seriesfeed.cli.daemon", "seriesfeed.daemon"): "the CLI shell starts the daemon shell",
    ("seriesfeed.cli.feeds", "seriesfeed.web.embedded"): "feeds serve starts the web shell",
    ("seriesfeed.web.ops", "seriesfeed.metrics"): "the /metrics endpoint exposes the registry",
    ("seriesfeed.daemon", "seriesfeed.scheduler"): "the daemon shell runs the scheduler shell",
    ("seriesfeed.scheduler", "seriesfeed.schedules"): "the run loop fires on the alarm clock "
                                                      "(the one APScheduler module)",
    ("seriesfeed.daemon", "seriesfeed.web.embedded"): "the daemon serves the web shell",
}


def module_name(path: Path, src: Path = SRC) -> str:
    return ".".join(path.relative_to(src).with_suffix("").parts)


def _package_init(name: str, src: Path) -> bool:
    return (src.joinpath(*name.split(".")) / "__init__.py").exists()


def _is_module(name: str, src: Path) -> bool:
    return src.joinpath(*name.split(".")).with_suffix(".py").exists() or _package_init(name, src)


def imports_of(path: Path, src: Path = SRC) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (absolute dotted names), with the line."""
    mod = module_name(path, src)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from seriesfeed import store` imports a module
                if _is_module(f"{target}.{alias.name}", src):
                    yield f"{target}.{alias.name}", node.lineno


def _within(name: str, owner: str) -> bool:
    """``owner`` is a module ('seriesfeed.feeds') or a package ('seriesfeed.store.')."""
    if owner.endswith("."):
        return name.startswith(owner) or name == owner[:-1] + ".__init__"
    return name in (owner, owner + ".__init__")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(_within(name, p) for p in prefixes)


def _owners(owner: str | tuple[str, ...]) -> tuple[str, ...]:
    return owner if isinstance(owner, tuple) else (owner,)


def _ours(target: str, src: Path) -> str | None:
    """The module of ours a target names (a package import names its __init__)."""
    if target != "seriesfeed" and not target.startswith("seriesfeed."):
        return None
    return target + ".__init__" if _package_init(target, src) else target


def _shell_may_import(mod: str, own: str) -> bool:
    if _under(own, SHELL_MAY_IMPORT) or own == "seriesfeed.__init__":
        return True
    for pkg in ("seriesfeed.cli.", "seriesfeed.web."):
        if _within(mod, pkg) and _within(own, pkg):
            return True  # a shell's own package
    return (mod, own) in SHELL_ALLOWED


def violations(src: Path = SRC) -> list[str]:
    found: list[str] = []
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((src / "seriesfeed").rglob("*.py")):
        mod = module_name(path, src)
        where = f"{path.relative_to(src)}"
        for target, line in imports_of(path, src):
            top = target.split(".")[0]
            if top in stdlib or top == "__future__":
                continue
            own = _ours(target, src)
            if own is None:
                owner = OWNERS.get(top)
                if owner is None:
                    found.append(f"{where}:{line}: imports {target}, a library with no owner "
                                 "in OWNERS")
                elif not _under(mod, _owners(owner)):
                    found.append(f"{where}:{line}: imports {target}, which only {owner} may "
                                 "import")
            elif _within(own, "seriesfeed.store."):
                if _under(mod, SHELLS):
                    found.append(f"{where}:{line}: a shell imports the store ({target}); "
                                 "call a verb in actions/")
                elif _under(mod, RENDERING):
                    found.append(f"{where}:{line}: rendering imports the store ({target}); "
                                 "it takes plain data")
                elif not _under(mod, ("seriesfeed.actions.", "seriesfeed.store.")):
                    found.append(f"{where}:{line}: only the verbs use the store ({target}); "
                                 "move the transaction into actions/ or take plain data")
            elif _within(mod, "seriesfeed.actions.") and _under(own, SHELLS):
                found.append(f"{where}:{line}: a verb imports a shell ({target}); the shell "
                             "calls the verb, never the other way")
            elif _under(mod, SHELLS) and not _shell_may_import(mod, own):
                found.append(f"{where}:{line}: a shell imports {target}; shells import only "
                             "actions, config, models and errors")
    return found


def test_the_layers_hold() -> None:
    found = violations()
    assert not found, "layer violations:\n" + "\n".join(found)


def test_every_allowed_exception_is_still_needed() -> None:
    """An entry of SHELL_ALLOWED that no import uses any more must be struck out."""
    used = set()
    for path in PACKAGE.rglob("*.py"):
        for target, _ in imports_of(path):
            own = _ours(target, SRC)
            if own is not None:
                used.add((module_name(path), own))
    stale = [k for k in SHELL_ALLOWED if k not in used]
    assert not stale, f"strike these from SHELL_ALLOWED: {stale}"


def test_every_owner_imports_its_library() -> None:
    """OWNERS tells the truth: each owner does import the library it owns."""
    seen: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for target, _ in imports_of(path):
            seen.setdefault(target.split(".")[0], set()).add(module_name(path))
    unused = [(lib, o) for lib, owner in OWNERS.items() for o in _owners(owner)
              if not any(_within(m, o) for m in seen.get(lib, ()))]
    assert not unused, f"OWNERS lists libraries nobody imports: {unused}"


def test_the_walk_finds_each_kind_of_violation(tmp_path: Path) -> None:
    """The checker itself: a tree with one violation of each kind reports each one."""
    pkg = tmp_path / "seriesfeed"
    for folder in ("store", "cli", "web"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "entries.py").write_text("from sqlalchemy import select\n")
    (pkg / "digest.py").write_text("def f() -> None:\n    from sqlalchemy import text\n")
    (pkg / "cli" / "digest.py").write_text("from seriesfeed import store\n")
    (pkg / "web" / "pages.py").write_text("from seriesfeed.store import entries as q\n"
                                           "import jinja2\n")
    (pkg / "feeds.py").write_text("from seriesfeed.store.entries import select\n")
    (pkg / "cli" / "entries.py").write_text("from seriesfeed import feeds\n"
                                            "import leftpad\n")
    (pkg / "actions").mkdir()
    (pkg / "actions" / "__init__.py").write_text("")
    (pkg / "actions" / "status.py").write_text("from seriesfeed.store import jobs\n"
                                               "def f() -> None:\n"
                                               "    from seriesfeed.daemon import build\n")
    (pkg / "daemon.py").write_text("")
    (pkg / "outbox.py").write_text("from seriesfeed.store import outbox as oq\n")
    found = "\n".join(violations(tmp_path))
    assert "seriesfeed/digest.py:2: imports sqlalchemy, which only seriesfeed.store." in found
    assert "store/entries.py" not in found
    assert "cli/digest.py:1: a shell imports the store (seriesfeed.store)" in found
    assert "web/pages.py:1: a shell imports the store" in found
    assert "web/pages.py:2: imports jinja2, which only seriesfeed.templating may" in found
    assert "seriesfeed/feeds.py:1: rendering imports the store" in found
    assert "cli/entries.py:1: a shell imports seriesfeed.feeds" in found
    assert "cli/entries.py:2: imports leftpad, a library with no owner" in found
    assert "seriesfeed/outbox.py:1: only the verbs use the store" in found
    assert "actions/status.py:1" not in found  # a verb may use the store
    assert "actions/status.py:3: a verb imports a shell (seriesfeed.daemon)" in found


def test_every_module_imports_first() -> None:
    """No import cycle bites whichever module a program imports first (the verbs import one
    another, and the ``actions`` package imports every verb module)."""
    import subprocess

    names = sorted(module_name(p).removesuffix(".__init__") for p in PACKAGE.rglob("*.py")
                   if "migrations" not in p.parts and p.name != "__main__.py")
    probe = (
        "import importlib, sys\n"
        f"failed = []\nfor name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('seriesfeed')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except ImportError as exc:\n        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == ""


def test_every_module_says_what_it_exports() -> None:
    """``__all__`` in each module: the public names are a decision, not an accident."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts or path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declared = any(isinstance(n, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets) for n in tree.body)
        has_public = any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                         and not n.name.startswith("_") for n in tree.body)
        if has_public and not declared:
            missing.append(str(path.relative_to(SRC)))
    assert not missing, f"no __all__ in: {missing}"


def _holder(attribute: ast.Attribute) -> str:
    """The name an attribute is read from: ``store`` for ``store.read`` and for
    ``app.store.read``."""
    owner = attribute.value
    if isinstance(owner, ast.Name):
        return owner.id
    return owner.attr if isinstance(owner, ast.Attribute) else ""


def transactions_outside_the_verbs(src: Path = SRC) -> list[str]:
    """``<something>.store.read()`` / ``.write()`` / ``.transaction()`` called by a module
    that is neither a verb nor the store: a store passed in as a parameter needs no import,
    so the import rule alone would not see it."""
    found = []
    for path in sorted((src / "seriesfeed").rglob("*.py")):
        mod = module_name(path, src)
        if _under(mod, ("seriesfeed.actions.", "seriesfeed.store.")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("read", "write", "transaction")):
                continue
            name = _holder(node.func)
            if name == "store" or name.endswith("_store"):
                found.append(f"{path.relative_to(src)}:{node.lineno}: opens a transaction "
                             f"({name}.{node.func.attr}()); a verb in actions/ owns it")
    return found


def test_only_the_verbs_open_transactions(tmp_path: Path) -> None:
    assert transactions_outside_the_verbs() == []
    pkg = tmp_path / "seriesfeed"
    (pkg / "web").mkdir(parents=True)
    (pkg / "web" / "ops.py").write_text(
        "def healthz(app):\n    with app.store.read() as conn:\n        return conn\n")
    (pkg / "actions").mkdir()
    (pkg / "actions" / "status.py").write_text(
        "def report(store):\n    with store.read() as conn:\n        return conn\n")
    found = transactions_outside_the_verbs(tmp_path)
    assert found == ["seriesfeed/web/ops.py:2: opens a transaction (store.read()); a verb in "
                     "actions/ owns it"]


# what a shell may ask of a store object a verb handed it, and why
SHELL_STORE_METHODS = {
    "close": "the shell that opened the store closes it",
    "describe": "a shell names the store in what it prints (no path on a public page)",
    "with_busy_timeout": "the web app's own engine waits less for a lock than the CLI's",
}


def store_use_in_shells(src: Path = SRC) -> list[str]:
    """A shell holds a store only to hand it to verbs: any other method called on it
    (``store.dialect``, ``app.store.migrate()``) or a ``Store(...)`` it builds itself is
    work that belongs to a verb."""
    found = []
    for path in sorted((src / "seriesfeed").rglob("*.py")):
        mod = module_name(path, src)
        if not _under(mod, SHELLS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "Store")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "Store")):
                found.append(f"{path.relative_to(src)}:{node.lineno}: builds a Store; "
                             "call actions.open_store")
            if not isinstance(node, ast.Attribute):
                continue
            name = _holder(node)
            if (name in ("store", "_store") or name.endswith("_store")) and \
                    node.attr not in SHELL_STORE_METHODS:
                found.append(f"{path.relative_to(src)}:{node.lineno}: a shell uses "
                             f"{name}.{node.attr}; a verb in actions/ should")
    # ast.walk goes breadth first: report in line order
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def test_shells_only_hand_the_store_on(tmp_path: Path) -> None:
    assert store_use_in_shells() == []
    pkg = tmp_path / "seriesfeed"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "cli" / "__init__.py").write_text(
        "def init(app):\n    s = Store(app.url)\n    app.store.migrate()\n"
        "    print(app.store.describe())\n    app.store.close()\n"
        "    web_store = actions.Store(app.url)\n    web_store.engine.dispose()\n")
    found = store_use_in_shells(tmp_path)
    assert found == ["seriesfeed/cli/__init__.py:2: builds a Store; call actions.open_store",
                     "seriesfeed/cli/__init__.py:3: a shell uses store.migrate; a verb in "
                     "actions/ should",
                     "seriesfeed/cli/__init__.py:6: builds a Store; call actions.open_store",
                     "seriesfeed/cli/__init__.py:7: a shell uses web_store.engine; a verb in "
                     "actions/ should"]


def test_every_exported_name_exists() -> None:
    """An ``__all__`` that names something deleted or renamed is a lie the moves leave."""
    import importlib

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts or path.name == "__main__.py":
            continue
        module = importlib.import_module(module_name(path).removesuffix(".__init__"))
        missing += [f"{module.__name__}.{name}" for name in getattr(module, "__all__", ())
                    if not hasattr(module, name)]
    assert not missing, f"__all__ names what is not there: {missing}"


# names a shell may take from actions/ although they are defined elsewhere, and why: data
# types a verb takes or returns, never work done on the verb's behalf
SHELL_REEXPORTS_ALLOWED: dict[str, str] = {
    "seriesfeed.store.Store": "the store handle a shell opens through a verb and hands on",
    "seriesfeed.feeds.FeedDocument": "what the feed verbs return (path, bytes, type, date)",
    "seriesfeed.publish.etag_of": "the web's ETag is the one publish writes beside each "
                                  "file, so a file server and the app agree",
    "seriesfeed.tokens.Purpose": "the link kind subscriber_for takes",
}


def names_shells_take_from_actions(src: Path = SRC) -> Iterator[tuple[str, int, str, str]]:
    """(shell file, line, module, name) for each ``from seriesfeed.actions... import N`` and
    each ``actions.N`` / ``actions.<verb module>.N`` a shell reads."""
    for path in sorted((src / "seriesfeed").rglob("*.py")):
        if not _under(module_name(path, src), SHELLS):
            continue
        where = str(path.relative_to(src))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "seriesfeed.actions"):
                for alias in node.names:
                    yield where, node.lineno, node.module or "", alias.name
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "actions":
                yield where, node.lineno, "seriesfeed.actions", node.attr
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and isinstance(node.value.value, ast.Name) \
                    and node.value.value.id == "actions":
                yield where, node.lineno, f"seriesfeed.actions.{node.value.attr}", node.attr


def laundered_names(src: Path = SRC) -> list[str]:
    """A verb module re-exporting another module's function lets a shell do that module's
    work with no import the rules above would see (``actions.subscribers.make_csrf`` was
    ``tokens.make_csrf``): every name a shell takes from actions/ is defined there, or is
    one of the data types in SHELL_REEXPORTS_ALLOWED."""
    import importlib
    import inspect

    found = []
    for where, line, module, name in names_shells_take_from_actions(src):
        thing = getattr(importlib.import_module(module), name)
        home = thing.__name__ if inspect.ismodule(thing) else getattr(thing, "__module__", None)
        if not isinstance(home, str) or home.startswith("seriesfeed.actions"):
            continue  # a verb, a verb module, or a constant
        if f"{home}.{name}" not in SHELL_REEXPORTS_ALLOWED:
            found.append(f"{where}:{line}: takes {module}.{name}, which is {home}.{name}; "
                         "a verb should do that work")
    return found


def test_shells_take_verbs_not_re_exports() -> None:
    assert laundered_names() == []
    used = {f"{m}.{n}" for _, _, m, n in names_shells_take_from_actions()}
    import importlib

    homes = set()
    for name in used:
        module, _, attr = name.rpartition(".")
        thing = getattr(importlib.import_module(module), attr)
        homes.add(f"{getattr(thing, '__module__', '')}.{attr}")
    stale = sorted(set(SHELL_REEXPORTS_ALLOWED) - homes)
    assert not stale, f"strike these from SHELL_REEXPORTS_ALLOWED: {stale}"
