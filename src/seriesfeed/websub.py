"""WebSub (W3C): tell the configured hub which feeds changed, so subscribers hear at once."""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request

from seriesfeed.config import Config

__all__ = ["FEED_SUFFIXES", "notify_hub"]

log = logging.getLogger("seriesfeed.websub")
FEED_SUFFIXES = (".xml", ".json")


def notify_hub(config: Config, changed_paths: list[str], timeout: float = 10.0) -> int:
    """POST ``hub.mode=publish`` for each changed feed; return how many the hub accepted.
    A hub that is down is logged, never fatal: readers still poll."""
    hub = config.websub.hub
    if not hub:
        return 0
    accepted = 0
    for path in changed_paths:
        # feeds only: the sitemap is XML too, and no hub serves it
        if not path.startswith("/feeds/") or not path.endswith(FEED_SUFFIXES) or \
                "/archive/" in path:
            continue
        data = urllib.parse.urlencode({"hub.mode": "publish",
                                       "hub.url": config.public_url + path}).encode()
        request = urllib.request.Request(hub, data=data, method="POST", headers={  # noqa: S310
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                accepted += 200 <= response.status < 300
        except (urllib.error.URLError, OSError) as exc:
            log.warning("WebSub hub %s: %s", hub, exc)
    return accepted
