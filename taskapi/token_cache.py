"""A bounded cache of verified tokens' claims, oldest entry evicted first."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict


class VerifiedTokens:
    """The claims of tokens that passed verification, until each one's ``exp``.

    Entries are keyed by a hash of the token, so a long token costs 32 bytes
    of key; when the cache is full, the entry stored first goes first.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._claims: OrderedDict[bytes, dict] = OrderedDict()
        self._lock = threading.Lock()  # eviction must not race between threads

    def get(self, token: str) -> dict | None:
        """The claims stored for ``token``, or None (unknown, or expired since)."""
        claims = self._claims.get(_key(token))
        if claims is None or claims["exp"] <= time.time():
            return None
        return claims

    def put(self, token: str, claims: dict) -> None:
        with self._lock:
            self._claims[_key(token)] = claims
            while len(self._claims) > self.capacity:
                self._claims.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._claims.clear()

    def __len__(self) -> int:
        return len(self._claims)


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
