"""The gateway's pure parts: tokens and grants, admission limits, frame codec. No sockets."""

from __future__ import annotations

import json

import msgspec
import pytest

from gateway import protocol as p
from gateway.auth import Grant, mint_token, owner_keys, token_secret, verify_token
from gateway.limits import Admission, TokenBucket
from runtime.errors import ConfigError, Forbidden, Unauthenticated

SECRET = "s" * 32


def test_tokens_round_trip_and_carry_the_tenant_owners_rights():
    grant = verify_token(SECRET, mint_token(SECRET, tenant="acme", owners=owner_keys(["alice"], ["bot"]),
                                            rights=["read"], subject="app-1"))
    assert grant.tenant == "acme" and grant.owners == {"user:alice", "agent:bot"} and grant.rights == {"read"}
    assert grant.subject == "app-1"
    grant.require("read", "user:alice")
    with pytest.raises(Forbidden, match="no 'write' right"):
        grant.require("write", "user:alice")
    with pytest.raises(Forbidden, match="does not cover owner 'user:bob'"):
        grant.require("read", "user:bob")


def test_wildcard_owner_and_admin_right():
    admin = Grant(tenant="t", owners=frozenset({"*"}), rights=frozenset({"admin"}))
    admin.require("write", "user:anyone")
    admin.require("subscribe", "agent:x")


@pytest.mark.parametrize("mutate,reason", [
    (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "invalid token"),
    (lambda t: mint_token("o" * 32, tenant="acme", owners=["*"]), "Signature verification failed"),
    (lambda t: mint_token(SECRET, tenant="acme", owners=["*"], ttl_s=-10), "token expired"),
    (lambda t: "", "invalid token"),
])
def test_forged_expired_and_truncated_tokens(mutate, reason):
    token = mint_token(SECRET, tenant="acme", owners=["*"])
    with pytest.raises(Unauthenticated, match=reason):
        verify_token(SECRET, mutate(token))


def test_expiry_is_judged_by_the_clock_the_gateway_gives():
    import jwt

    token = mint_token(SECRET, tenant="acme", owners=["*"], ttl_s=60, now=1_000_000)
    assert verify_token(SECRET, token, now=1_000_059).expires_at == 1_000_060
    with pytest.raises(Unauthenticated, match="token expired"):
        verify_token(SECRET, token, now=1_000_060)
    odd = jwt.encode({"iss": "memstream", "sub": "x", "iat": 1, "exp": "never", "tenant": "acme", "owners": ["*"],
                      "rights": ["read"]}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="exp must be a number"):
        verify_token(SECRET, odd)


def test_alg_none_tokens_are_refused():
    import jwt

    unsigned = jwt.encode({"iss": "memstream", "sub": "x", "iat": 1, "exp": 2**40, "tenant": "acme",
                           "owners": ["*"], "rights": ["admin"]}, None, algorithm="none")
    with pytest.raises(Unauthenticated):
        verify_token(SECRET, unsigned)


def test_token_secret_from_env_must_be_long_or_a_dev_secret_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MS_TEST_SECRET", "short")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        token_secret("MS_TEST_SECRET", tmp_path)
    monkeypatch.delenv("MS_TEST_SECRET")
    first, dev = token_secret("MS_TEST_SECRET", tmp_path)
    assert dev and len(first) >= 32 and token_secret("MS_TEST_SECRET", tmp_path)[0] == first
    assert (tmp_path / "gateway.secret").stat().st_mode & 0o777 == 0o600


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.take() == 0


def test_admission_limits_in_flight_and_counts_strikes():
    admission = Admission(rate=1000, burst=1000, max_in_flight=2, max_strikes=3, clock=lambda: 0.0)
    assert admission.admit()[0] and admission.admit()[0]
    refused = admission.admit()
    assert not refused[0] and "in flight" in refused[2]
    admission.done()
    assert admission.admit()[0]
    for _ in range(3):
        admission.admit()
    assert admission.should_close


def test_codec_json_and_msgpack_decode_the_same_frames():
    frame = {"type": "search", "id": 1, "query": "tea", "user_id": "alice", "limit": 3}
    for codec, data in ((p.Codec(False), json.dumps(frame)), (p.Codec(True), msgspec.msgpack.encode(frame))):
        decoded = codec.decode(data)
        assert isinstance(decoded, p.Search) and decoded.query == "tea" and decoded.limit == 3
    assert p.Codec(True).encode(p.Pong(id=1, ts=1.0)) == msgspec.msgpack.encode({"type": "pong", "id": 1, "ts": 1.0})


@pytest.mark.parametrize("raw,code,frame_id", [
    ("nope", "bad_frame", None),
    ('{"type": "search", "id": "q1", "query": "", "user_id": "a"}', "invalid_frame", "q1"),
    ('{"type": "search", "id": "q2", "query": "x", "user_id": "a", "limit": 5000}', "invalid_frame", "q2"),
    ('{"type": "add", "id": true, "messages": "x"}', "invalid_frame", None),
    ('{"id": 3}', "invalid_frame", 3),
])
def test_codec_rejections_name_the_problem_and_echo_the_id(raw, code, frame_id):
    with pytest.raises(p.FrameError) as failure:
        p.Codec(False).decode(raw)
    assert failure.value.code == code and failure.value.frame_id == frame_id and str(failure.value)


def test_codec_refuses_a_msgpack_string_that_is_not_utf8():
    """Regression: invalid UTF-8 inside a MessagePack string escaped the codec as a
    UnicodeDecodeError and closed the connection with 1011."""
    raw = msgspec.msgpack.encode({"type": "ping", "id": "x"})[:-1] + b"\xa2\xff\xfe"
    with pytest.raises(p.FrameError) as failure:
        p.Codec(True).decode(raw)
    assert failure.value.code == "bad_frame" and "UTF-8" in str(failure.value)
