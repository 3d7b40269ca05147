"""CORS for the frontend's origins (``CORS_ORIGINS``), on /api/* only.

Bearer tokens, not cookies: credentials are not allowed. Preflight requests
are answered without authentication (Flask answers OPTIONS itself, before
any view). An origin not in the list gets no ``Access-Control-Allow-Origin``,
so the browser keeps the response from it. With CORS configured, every
response (any path, any origin, none) carries ``Vary: Origin``: the answer
depends on the origin, and a shared cache must not hand one origin's answer
to another.

One after-request hook of our own rather than flask-cors: the origins are
exact (config refuses patterns), so the work is a set lookup (what flask-cors
cost for its generality: docs/performance.md).
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"]
EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Total-Count", "Retry-After", "X-Request-ID"]
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_AGE_SECONDS = 600

ALLOWED_HEADER_NAMES = {name.lower() for name in ALLOWED_HEADERS}
EXPOSED = ", ".join(EXPOSED_HEADERS)
METHODS = ", ".join(ALLOWED_METHODS)


def init_cors(app: Flask) -> None:
    origins = app.config.get("CORS_ORIGINS") or []
    if not origins:
        return  # no CORS headers at all
    # Schemes and host names are case-insensitive (RFC 3986); browsers send them in lower case.
    allowed = frozenset(origin.lower() for origin in origins)

    def add_cors_headers(response: Response) -> Response:
        headers = response.headers
        if "Vary" in headers:
            response.vary.add("Origin")
        else:
            headers["Vary"] = "Origin"
        origin = request.headers.get("Origin")
        if origin is None or origin.lower() not in allowed or not is_api_path(request.path):
            return response
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED
        if request.method == "OPTIONS":
            preflight_headers(response)
        return response

    app.after_request(add_cors_headers)


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path == "/api"


def preflight_headers(response: Response) -> None:
    """What a preflight asking for an allowed method may use (else: nothing more)."""
    if request.headers.get("Access-Control-Request-Method", "").upper() not in ALLOWED_METHODS:
        return
    requested = request.headers.get("Access-Control-Request-Headers", "")
    allowed = sorted(
        name
        for name in (part.strip() for part in requested.split(","))
        if name.lower() in ALLOWED_HEADER_NAMES
    )
    if allowed:
        response.headers["Access-Control-Allow-Headers"] = ", ".join(allowed)
    response.headers["Access-Control-Allow-Methods"] = METHODS
    response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
