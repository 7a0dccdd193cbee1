"""The one address validator: every email address seriesfeed accepts (subscribe form,
CLI, CSV import, ``digest send --to``) passes through ``normalize_email``."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from seriesfeed.errors import ValidationError

__all__ = ["mask_address", "normalize_email"]

_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                     r"[A-Za-z]{2,63}|(?=.{1,253}$)([^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}")


def normalize_email(raw: str, field: str = "email") -> str:
    """A syntactically valid address, normalised once on the way in (no DNS look-up):
    the domain as A-labels (IDNA), so only an internationalised local part (RFC 6531)
    needs SMTPUTF8 later; else ValidationError."""
    if len(raw) > 320 or any(c in raw for c in "\r\n\0"):
        raise ValidationError("not a valid email address", field=field)
    try:
        valid = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"not a valid email address ({exc})", field=field) from exc
    return f"{valid.local_part}@{valid.ascii_domain}"


def mask_address(address: str, *, local_part: bool = True) -> str:
    """``l•••a@example.org``: enough for its owner to recognise, little for anyone else.
    Without ``local_part``, ``•••@example.org``: the domain, where typing mistakes
    (``gmial.com``) are, and nothing that tells two people at one domain apart."""
    local, _, domain = address.rpartition("@")
    if not _DOMAIN.fullmatch(domain):  # typed text is echoed only when it is a host name
        return "•••"
    if not local or not local_part:
        return f"•••@{domain}" if domain and local else "•••"
    shown = local[0] + "•••" + (local[-1] if len(local) > 3 else "")
    return f"{shown}@{domain}"
