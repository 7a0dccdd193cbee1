"""The corpus tests use the catalogue's scripted SMTP servers."""

from tests.reliability.conftest import fault

__all__ = ["fault"]
