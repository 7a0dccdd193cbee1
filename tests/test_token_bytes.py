"""Tokens made the short way (digest links: no json.dumps, a keyed HMAC copied) are the
very tokens the plain construction makes."""

from __future__ import annotations

import hmac
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from seriesfeed import tokens


@settings(max_examples=200, deadline=None)
@given(subscriber=st.integers(min_value=0, max_value=2**63), issued=st.integers(0, 2**40),
       bound=st.one_of(st.just(""), st.text(max_size=20)),
       purpose=st.sampled_from(list(tokens.Purpose)))
def test_a_token_made_the_short_way_is_the_token_json_and_hmac_make(
        subscriber: int, issued: int, bound: str, purpose: tokens.Purpose) -> None:
    """Digest links skip json.dumps and reuse a keyed HMAC: the token is the same string
    the plain construction gives, and it reads back."""
    key = b"k" * 32
    payload = json.dumps({"s": subscriber, "t": issued, "b": bound},
                         separators=(",", ":")).encode("utf-8")
    mac = hmac.digest(hmac.digest(key, f"seriesfeed/{purpose.value}".encode(), "sha256"),
                      payload, "sha256")
    token = tokens.make_token(key, purpose, subscriber, bound=bound, now=issued)
    assert token == f"{tokens._b64(payload)}.{tokens._b64(mac)}"
    claims = tokens.read_token(key, purpose, token, now=issued)
    assert (claims.subscriber_id, claims.issued_at, claims.bound) == (subscriber, issued, bound)
