"""CORS for the frontend's origins (``CORS_ORIGINS``), on /api/* only.

Bearer tokens, not cookies: credentials are not allowed. Preflight requests
are answered without authentication. An origin not in the list gets no
``Access-Control-Allow-Origin``, so the browser keeps the response from it.
With CORS configured, every response (any path, any origin, none) carries
``Vary: Origin``: the answer depends on the origin, and a shared cache must
not hand one origin's answer to another.
"""

from flask import Flask, Response

from .extensions import cors

ALLOWED_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key"]
EXPOSED_HEADERS = ["ETag", "Location", "Link", "X-Total-Count", "Retry-After", "X-Request-ID"]
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def init_cors(app: Flask) -> None:
    origins = app.config.get("CORS_ORIGINS") or []
    if not origins:
        return  # no CORS headers at all
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": origins}},
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        methods=ALLOWED_METHODS,
        supports_credentials=False,
        max_age=600,
        vary_header=True,
    )
    app.after_request(vary_on_origin)


def vary_on_origin(response: Response) -> Response:
    response.vary.add("Origin")
    return response
