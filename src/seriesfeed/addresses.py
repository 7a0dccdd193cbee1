"""The one address validator: every email address seriesfeed accepts (subscribe form,
CLI, CSV import, ``digest send --to``) passes through ``normalize_email``."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from seriesfeed.errors import ValidationError

__all__ = ["normalize_email"]


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
