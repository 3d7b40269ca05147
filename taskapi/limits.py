"""Rate limits: per user on task routes, per client address on /api/auth/*.

Limits come from ``RATELIMIT_DEFAULT`` and ``RATELIMIT_AUTH`` (Flask-Limiter
notation). ``user_rate_limit`` goes below ``auth_required`` on a view: it
counts the authenticated user (``g.user_id``), not whatever a URL claims.

Flask-Limiter keeps its storage and switches on the ``Limiter`` object, not
per app, so each app gets its own ``Limiter`` (in ``app.extensions``) and the
route decorators below apply the current app's.
"""

from __future__ import annotations

import time
from functools import wraps
from weakref import WeakKeyDictionary

from flask import Flask, Response, current_app, g
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from .errors import handle_http_exception


def authenticated_user_key() -> str:
    return f"user:{g.user_id}"


def rate_limited(config_key: str, *, scope: str, key_func):
    """Count calls of the view in ``scope`` against the limit in ``config_key``."""

    def decorate(view):
        limited_views: WeakKeyDictionary = WeakKeyDictionary()

        @wraps(view)
        def wrapper(*args, **kwargs):
            limiter = current_app.extensions["taskapi.limiter"]
            if not limiter.enabled:
                return view(*args, **kwargs)
            limited = limited_views.get(limiter)
            if limited is None:
                limited = limiter.shared_limit(
                    lambda: current_app.config[config_key], scope=scope, key_func=key_func
                )(view)
                limited_views[limiter] = limited
            return limited(*args, **kwargs)

        return wrapper

    return decorate


# One shared count per user across every per-user route.
user_rate_limit = rate_limited("TASKS_RATE_LIMIT", scope="tasks", key_func=authenticated_user_key)
# Stricter, by client address (behind TRUSTED_PROXIES, the forwarded one):
# it is what slows down password guessing.
auth_rate_limit = rate_limited("AUTH_RATE_LIMIT", scope="auth", key_func=get_remote_address)


def too_many_requests(error: RateLimitExceeded) -> Response:
    """429 problem with ``Retry-After``: the seconds until the exceeded limit resets."""
    response = handle_http_exception(error)
    limit = current_app.extensions["taskapi.limiter"].current_limit
    reset_in = int(limit.reset_at - time.time()) if limit else 1
    response.headers["Retry-After"] = str(max(1, reset_in))
    return response


def init_limits(app: Flask) -> None:
    limiter = Limiter(key_func=get_remote_address, app=app)
    app.extensions["taskapi.limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    storage = app.config["RATELIMIT_STORAGE_URI"]
    if limiter.enabled and not storage.startswith("memory://") and not limiter.storage.check():
        app.logger.warning(
            "configuration: RATELIMIT_STORAGE_URI cannot be reached; until it can, each "
            "worker counts rate limits in its own memory."
        )
