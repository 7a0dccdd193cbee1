"""The console's login and logout pages (``actions.console`` decides; this is the form)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seriesfeed import actions
from seriesfeed.actions.console import Operator
from seriesfeed.errors import StoreError
from seriesfeed.web.admin.base import COOKIE, LOGIN_COOKIE, Console, Form

__all__ = ["login", "logout"]


def _set_cookie(console: Console, response: Response, name: str, value: str,
                max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/admin", httponly=True,
                        samesite="strict", secure=console.secure)


def _form(console: Console, request: Request, login_cookie: str, *, status: int = 200,
          error: str | None = None, headers: dict[str, str] | None = None) -> Response:
    _ = console.messages(console.language(request))
    csrf = actions.console.login_csrf(console.config, login_cookie) or ""
    response = console.page(request, "login.html.j2", title=_("Log in"), status=status,
                            login_csrf=csrf, error=error, headers=headers)
    _set_cookie(console, response, LOGIN_COOKIE, login_cookie, 7200)
    return response


async def login(console: Console, request: Request) -> Response:
    config = console.config
    _ = console.messages(console.language(request))
    try:
        if request.method != "POST":
            if await console.operator(request) is not None:
                return RedirectResponse("/admin/", status_code=303)
            cookie = request.cookies.get(LOGIN_COOKIE)
            if not cookie or actions.console.login_csrf(config, cookie) is None:
                cookie = actions.console.new_login_cookie(config)
            return _form(console, request, cookie)
        data = await console.own_form(request)
        if isinstance(data, Response):
            return data
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not actions.console.login_csrf_ok(config, cookie, data.get("csrf", "")):
            return console.refuse(request, 403, _("This form has expired; reload the page "
                                                  "and try again."))
        outcome = await console.call(
            actions.console.login, console.store, config,
            account=data.get("account", "")[:200], password=data.get("password", ""),
            address=console.client(request))
    except StoreError:
        return console.refuse(request, 503, _("The store is busy; try again in a few "
                                              "seconds."), headers={"Retry-After": "10"})
    if outcome.cookie is not None:
        done = RedirectResponse("/admin/", status_code=303)
        _set_cookie(console, done, COOKIE, outcome.cookie,
                    int(config.admin.session_hours * 3600))
        done.delete_cookie(LOGIN_COOKIE, path="/admin")
        return done
    assert cookie is not None  # login_csrf_ok needed it
    if outcome.busy:
        return _form(console, request, cookie, status=503, headers={"Retry-After": "1"},
                     error=_("The console is busy; try again in a second."))
    if outcome.retry_after is not None:
        minutes = max(1, round(outcome.retry_after / 60))
        return _form(console, request, cookie, status=429,
                     headers={"Retry-After": str(outcome.retry_after)},
                     error=_("Too many wrong passwords. Try again in {n} minutes.",
                             n=minutes))
    return _form(console, request, cookie, status=401,
                 error=_("Wrong account or password."))


async def logout(console: Console, request: Request, operator: Operator,
                 data: Form | None) -> Response:
    await console.call(actions.console.logout, console.store, operator,
                       console.client(request))
    done = RedirectResponse("/admin/login", status_code=303)
    done.delete_cookie(COOKIE, path="/admin")
    return done
