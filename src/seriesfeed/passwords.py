"""The console's password hashes: the standard library's scrypt, stored as one
self-describing string, ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``.

The parameters travel in the string, so a hash made today still verifies after the defaults
grow. Verification always runs scrypt once, whatever it is given (no hash configured, a hash
it cannot read): a wrong password, an unknown account and a right one take the same time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "N",
    "P",
    "ParsedHash",
    "R",
    "hash_password",
    "parse",
    "problem",
    "verify",
]

N, R, P = 2 ** 15, 8, 1  # 32 MiB of memory per hash: costly to guess on a GPU
SALT_BYTES, KEY_BYTES = 16, 32
MIN_LENGTH = 12
# the longest password a login reads (its form field is cut there): a longer one could be
# hashed but never typed into the console
MAX_LENGTH = 1024
SCHEME = "scrypt"
# scrypt needs 128 * r * n bytes; OpenSSL refuses anything over maxmem (32 MiB by default)
_MAXMEM = 256 * 1024 * 1024
# what verify() hashes against when there is no usable hash, so it costs the same
_DUMMY_SALT = b"\x00" * SALT_BYTES


@dataclass(frozen=True)
class ParsedHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    # NFC first (as RFC 8265's OpaqueString does): "é" typed as one code point or as "e"
    # and a combining accent (a macOS paste, some input methods) is one password to the
    # person typing it; compatibility forms (NFKC) stay distinct, as that profile keeps them
    password = unicodedata.normalize("NFC", password)
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=_MAXMEM, dklen=size)


def hash_password(password: str) -> str:
    """A new hash of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


def parse(value: str) -> ParsedHash:
    """The parts of a hash string; ValueError saying what is wrong with it."""
    parts = value.strip().split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise ValueError("is not a hash made by `seriesfeed admin hash-password` "
                         "(scrypt$N$r$p$salt$hash)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise ValueError("has a part that is not a number or not base64") from None
    # bounds: a hash from the file must not make every login allocate gigabytes
    if n < 2 ** 14 or n > 2 ** 20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 \
            or 128 * r * n > _MAXMEM:
        raise ValueError("has scrypt parameters out of range (n a power of two from 2^14 to "
                         "2^20, r 1-32, p 1-16)")
    if len(salt) < 16 or len(key) < 16:
        raise ValueError("has a salt or hash shorter than 16 bytes")
    return ParsedHash(n, r, p, salt, key)


def problem(value: str) -> str | None:
    """What is wrong with a configured hash (empty is allowed: nobody can log in)."""
    if value == "":
        return None
    try:
        parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def verify(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; runs scrypt exactly once in every case."""
    parsed: ParsedHash | None = None
    if stored:
        try:
            parsed = parse(stored)
        except ValueError:
            parsed = None
    if parsed is None:
        _derive(password, _DUMMY_SALT, N, R, P, KEY_BYTES)
        return False
    key = _derive(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(key, parsed.key)
