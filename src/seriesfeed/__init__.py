"""seriesfeed: RSS, Atom and JSON feeds and email digests for a multi-part article series."""

__version__ = "0.1.0"
