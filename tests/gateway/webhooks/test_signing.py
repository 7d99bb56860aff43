"""The signature header: computed as documented, checked in constant time, replays refused."""

from __future__ import annotations

import hashlib
import hmac

from gateway.webhooks.signing import header_value, new_secret, verify

BODY = b'{"event_details":{"id":"m1","data":{"memory":"x"},"event":"ADD"},"seq":1}'


def test_the_header_is_the_documented_hmac_of_timestamp_dot_body():
    secret = "whsec_test"
    expected = hmac.new(b"whsec_test", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header_value(secret, 1700000000, BODY) == f"t=1700000000,v1={expected}"


def test_verify_accepts_the_right_secret_and_body_only():
    secret = new_secret()
    header = header_value(secret, 1700000000, BODY)
    assert verify(secret, header, BODY, now=1700000010)
    assert not verify(secret, header, BODY + b" ", now=1700000010)
    assert not verify(new_secret(), header, BODY, now=1700000010)
    assert not verify(secret, header, BODY, now=1700000000 + 301)  # too old: a replay
    assert not verify(secret, "v1=abc", BODY, now=1700000000) and not verify(secret, "t=x,v1=1", BODY, now=0)
    rotated = f"{header},v1={'0' * 64}"  # several v1 values (a secret being rotated): any may match
    assert verify(secret, rotated, BODY, now=1700000000)
