"""Rate limits: per user on per-user routes, per client address on /api/auth/*.

Limits come from ``RATELIMIT_DEFAULT`` and ``RATELIMIT_AUTH`` (Flask-Limiter's
notation, parsed by the ``limits`` library Flask-Limiter is built on), counted
in fixed windows in ``RATELIMIT_STORAGE_URI`` (``memory://``, or Redis so that
workers and machines share one count). ``count_user_call`` counts a call for
a user id without a request, so other processes can share the per-user count;
``taskapi.auth.decorators.user_view`` calls it after the token is verified, so
it counts the authenticated user, not whatever a URL claims.

The ``limits`` library is used directly, not through Flask-Limiter: the
extension's per-request bookkeeping (a before-request check of every route,
limit resolution, exemption scopes) cost about a fifth of a GET, and a hit
here is one counter increment (docs/performance.md). If the store fails
(Redis unreachable), requests are counted in this process's memory for a
while instead of failing, as Flask-Limiter's in-memory fallback did.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import wraps

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, WindowStats
from werkzeug.exceptions import TooManyRequests

from ..errors import problem

log = logging.getLogger("taskapi.limits")
# A store that failed is not asked again for this long (requests are counted in memory).
STORAGE_RETRY_SECONDS = 30
# A Redis that does not answer must not hold requests up.
STORAGE_SOCKET_TIMEOUT = 1.0
# Windows that ended are dropped from memory this often.
PURGE_EVERY_SECONDS = 10


class MemoryWindows:
    """Fixed windows in this process's memory: per key, when its window ends and its count.

    What ``FixedWindowRateLimiter`` over ``limits``' MemoryStorage does, without
    that storage's expiry thread (started again every 10 ms under load) and
    per-key locks: ended windows are dropped every few seconds instead.
    """

    def __init__(self):
        self.windows: dict[str, list] = {}  # key -> [ends_at, count]
        self.lock = threading.Lock()
        self.next_purge = time.time() + PURGE_EVERY_SECONDS

    def hit(self, limit: RateLimitItem, *identifiers: str) -> bool:
        key = limit.key_for(*identifiers)
        now = time.time()
        with self.lock:
            if now >= self.next_purge:
                self.windows = {k: w for k, w in self.windows.items() if w[0] > now}
                self.next_purge = now + PURGE_EVERY_SECONDS
            window = self.windows.get(key)
            if window is None or window[0] <= now:
                window = self.windows[key] = [now + limit.get_expiry(), 0]
            window[1] += 1
            return window[1] <= limit.amount

    def get_window_stats(self, limit: RateLimitItem, *identifiers: str) -> WindowStats:
        ends_at, count = self.windows.get(limit.key_for(*identifiers), (time.time(), 0))
        return WindowStats(ends_at, max(0, limit.amount - count))


class RateLimits:
    """One app's counters: its store, a memory fallback, and its parsed limits."""

    def __init__(self, storage_uri: str, prefix: str, limits: dict[str, list[RateLimitItem]]):
        self.prefix = prefix
        self.limits = limits
        self.storage: Storage | None = None
        self.storage_errors: type[Exception] | tuple = ()
        self.counter: MemoryWindows | FixedWindowRateLimiter = MemoryWindows()
        if not storage_uri.startswith("memory://"):
            self.storage = storage_from_string(
                storage_uri,
                socket_timeout=STORAGE_SOCKET_TIMEOUT,
                socket_connect_timeout=STORAGE_SOCKET_TIMEOUT,
            )
            self.storage_errors = self.storage.base_exceptions
            self.counter = FixedWindowRateLimiter(self.storage)
        self.fallback = MemoryWindows()
        self.storage_failed_at = -math.inf

    def hit(self, config_key: str, scope: str, key: str) -> int | None:
        """Count one call; None if it is within every limit, else the seconds until
        the exceeded limit's window ends."""
        for limit in self.limits[config_key]:
            counter = self.current_counter()
            try:
                if counter.hit(limit, self.prefix, scope, key):
                    continue
                reset_at = counter.get_window_stats(limit, self.prefix, scope, key).reset_time
            except self.storage_errors as error:
                self.storage_failed(error)
                return self.hit(config_key, scope, key)
            return max(1, math.ceil(reset_at - time.time()))
        return None

    def current_counter(self) -> MemoryWindows | FixedWindowRateLimiter:
        if time.monotonic() - self.storage_failed_at < STORAGE_RETRY_SECONDS:
            return self.fallback
        return self.counter

    def storage_failed(self, error: Exception) -> None:
        self.storage_failed_at = time.monotonic()
        log.warning(
            "rate limit store failed (%s); counting in this process's memory for %d s",
            type(error).__name__,
            STORAGE_RETRY_SECONDS,
        )

    def reachable(self) -> bool:
        """Whether the store answers. The check's connection is closed again: the
        processes gunicorn forks from this one must not share its socket."""
        if self.storage is None:
            return True
        try:
            return self.storage.check()
        except Exception:
            return False
        finally:
            client = getattr(self.storage, "storage", None)  # limits' Redis storage: the client
            pool = getattr(client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()


def count_call(config_key: str, scope: str, key: str) -> int | None:
    """Count one call by ``key`` in ``scope`` against the limit in ``config_key``.

    None if it is within the limit (or limits are off), else the seconds until
    the exceeded limit's window ends. Needs an app context, not a request.
    """
    limits: RateLimits | None = current_app.extensions["taskapi.limits"]
    return None if limits is None else limits.hit(config_key, scope, key)


def count_user_call(user_id: str) -> int | None:
    """Count one call by ``user_id`` against ``TASKS_RATE_LIMIT``: one count per user,
    shared by every per-user route (and any process using the same store)."""
    return count_call("TASKS_RATE_LIMIT", "tasks", f"user:{user_id}")


def auth_rate_limit(view):
    """429 past ``AUTH_RATE_LIMIT`` calls from one client address to ``/api/auth/*``.

    Stricter than the per-user limit: it is what slows down password guessing.
    Behind TRUSTED_PROXIES hops, ProxyFix has put the forwarded address in
    ``remote_addr``.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        address = request.remote_addr or "127.0.0.1"
        retry_after = count_call("AUTH_RATE_LIMIT", "auth", address)
        if retry_after is not None:
            return too_many_requests(retry_after)
        return view(*args, **kwargs)

    return wrapper


def too_many_requests(retry_after: int) -> Response:
    """429 problem with ``Retry-After``: the seconds until the exceeded limit's window ends."""
    return problem(429, TooManyRequests.description, headers={"Retry-After": str(retry_after)})


def init_limits(app: Flask) -> None:
    if not app.config["RATELIMIT_ENABLED"]:
        app.extensions["taskapi.limits"] = None
        return
    limits = RateLimits(
        app.config["RATELIMIT_STORAGE_URI"],
        app.config["RATELIMIT_KEY_PREFIX"],
        {key: parse_many(app.config[key]) for key in ("TASKS_RATE_LIMIT", "AUTH_RATE_LIMIT")},
    )
    app.extensions["taskapi.limits"] = limits
    if not limits.reachable():
        app.logger.warning(
            "configuration: RATELIMIT_STORAGE_URI cannot be reached; until it can, each "
            "worker counts rate limits in its own memory."
        )
