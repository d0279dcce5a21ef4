"""API keys are stored hashed, checked in constant time, and read from the environment without keeping them."""

from __future__ import annotations

import pytest

from causalprint.serving.keys import KeyFormatError, KeyRing, gather_keys, hash_key, keys_from_env, new_key
from causalprint.serving.ratelimit import RateLimiter


def test_a_record_never_holds_the_key_and_checks_it() -> None:
    key, record = new_key("user")
    assert key.split("_")[2] not in record.model_dump_json()
    ring = KeyRing([record])
    assert ring.check(key) == (record.id, "user")
    assert ring.check(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # one character off
    assert ring.check("cp_" + record.id + "_" + "x" * 43) is None
    assert ring.check("") is None and ring.check("not a key") is None


def test_the_same_key_hashes_with_a_fresh_salt_each_time() -> None:
    key, _ = new_key("admin")
    a, b = hash_key(key, "admin"), hash_key(key, "admin")
    assert a.hash != b.hash and KeyRing([a]).check(key) and KeyRing([b]).check(key)


def test_keys_from_the_environment_are_parsed_hashed_and_validated() -> None:
    user, _ = new_key("user")
    admin, _ = new_key("admin")
    records = keys_from_env(f"user:{user}, admin:{admin},")
    assert [r.role for r in records] == ["user", "admin"]
    assert user not in str(records) and admin not in str(records)
    with pytest.raises(KeyFormatError, match="entry 1 must read user:<key> or admin:<key>"):
        keys_from_env(f"root:{user}")
    with pytest.raises(KeyFormatError, match="cp_<8-32") as caught:
        keys_from_env("user:hunter2")
    assert "hunter2" not in str(caught.value)
    assert "make one with `causalprint keygen`" in str(caught.value)  # the command that exists


def test_a_duplicate_key_id_is_refused() -> None:
    key, record = new_key("user")
    with pytest.raises(KeyFormatError, match="unique"):
        gather_keys([record], "KEYS", {"KEYS": f"admin:{key}"})


def test_the_rate_limiter_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("a") == pytest.approx(1.0)  # one token a second
    assert limiter.allow("b") == 0.0  # callers are separate
    now[0] = 1.0
    assert limiter.allow("a") == 0.0 and limiter.allow("a") > 0
