"""API keys: made here, stored as salted hashes, checked in constant time.

A key reads ``cp_<id>_<secret>``: the id finds its record without hashing every stored key, the secret is 32
random bytes. A salted SHA-256 suffices for secrets of that entropy (a slow password hash would only add
milliseconds to every request); the stored record never holds the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping

from causalprint.serving.config import KeyRecord, Role

_KEY = re.compile(r"^cp_(?P<id>[a-z0-9]{8,32})_(?P<secret>[A-Za-z0-9_-]{32,128})$")


class KeyFormatError(ValueError):
    """A key given to the app (config or environment) is malformed; the message never echoes the secret."""


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()


def hash_key(key: str, role: Role) -> KeyRecord:
    """The stored form of ``key`` (a fresh salt each call)."""
    match = _KEY.match(key)
    if match is None:
        raise KeyFormatError(
            "an API key must look like cp_<8-32 lowercase letters or digits>_<32+ url-safe "
            "characters>; make one with `causalprint keygen`"
        )
    salt = secrets.token_hex(16)
    return KeyRecord(id=match["id"], role=role, hash=f"sha256${salt}${_digest(salt, key)}")


def new_key(role: Role) -> tuple[str, KeyRecord]:
    """A fresh key and its record: give the key to its user, put the record in the config."""
    key = f"cp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    return key, hash_key(key, role)


def keys_from_env(value: str) -> list[KeyRecord]:
    """``role:key,role:key`` (e.g. from ``CAUSALPRINT_API_KEYS``) -> records; the plain keys are not kept."""
    records = []
    for n, item in enumerate(filter(None, (part.strip() for part in value.split(","))), start=1):
        role, sep, key = item.partition(":")
        if not sep or role not in ("user", "admin"):
            raise KeyFormatError(f"API key entry {n} must read user:<key> or admin:<key>")
        records.append(hash_key(key, role))  # type: ignore[arg-type]
    return records


def gather_keys(
    configured: Iterable[KeyRecord], keys_env: str, environ: Mapping[str, str] | None = None
) -> tuple[KeyRecord, ...]:
    """Configured records plus those of the environment variable ``keys_env``; a duplicate id is refused."""
    environ = os.environ if environ is None else environ
    records = [*configured, *keys_from_env(environ.get(keys_env, ""))]
    ids = [r.id for r in records]
    if len(ids) != len(set(ids)):
        raise KeyFormatError(f"API key ids must be unique, got {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    return tuple(records)


class KeyRing:
    """The records, looked up by id; :meth:`check` answers a presented key's role, or None."""

    def __init__(self, records: Iterable[KeyRecord]) -> None:
        self._records = {r.id: r for r in records}

    def __bool__(self) -> bool:
        return bool(self._records)

    def check(self, presented: str) -> tuple[str, Role] | None:
        """``(key id, role)`` of a valid key; None for anything else (unknown id, wrong secret, bad form)."""
        match = _KEY.match(presented)
        record = self._records.get(match["id"]) if match else None
        if record is None:
            return None
        _, salt, digest = record.hash.split("$")
        return (record.id, record.role) if hmac.compare_digest(_digest(salt, presented), digest) else None
