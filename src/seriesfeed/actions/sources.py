"""Source verbs: import a URL once, poll the configured sources, list them. They live in
``seriesfeed.sources`` (the poller); this module is the shells' door to them."""

from __future__ import annotations

from seriesfeed.sources import (
    failing_sources,
    import_url,
    is_url,
    list_sources,
    poll_source,
    poll_sources,
)

__all__ = ["failing_sources", "import_url", "is_url", "list_sources", "poll_source",
           "poll_sources"]
