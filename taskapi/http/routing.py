"""URLs without surprises: no redirects, ASCII-only ids, no Host header echoed.

Werkzeug's defaults redirect ``/api//x`` to ``/api/x`` (merging slashes, with
a ``Location`` built from the Host header); here that is a plain 404. (It also
redirects to rules ending in a slash; no rule here ends in one, a test checks.)
Its ``int`` converter matches any Unicode digit, so ``/tasks/%EF%BC%91`` (a
fullwidth 1) would read task 1; here only ASCII digits are an id.

Links the API hands out (``Link: <...>; rel="next"``) are root-relative,
absolute only from ``PUBLIC_URL`` or from a forwarded host that a trusted
proxy (``TRUSTED_PROXIES``) vouches for: whatever a client puts in ``Host``
never comes back in a response.

A query string is at most ``QUERY_STRING_MAX_LENGTH`` once percent-encoded,
the cursor aside (414 problem otherwise): the ``next`` link of a list repeats the query and
adds a cursor, and must still fit gunicorn's request line
(``limit_request_line`` in gunicorn.conf.py), or following it would fail.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, abort, current_app, request, url_for
from werkzeug.routing import IntegerConverter

# With a cursor (at most about 1.4 KB, see cursors.py) and the longest path,
# a next link stays well under gunicorn's 8190-byte request line.
QUERY_STRING_MAX_LENGTH = 4096


class AsciiIntegerConverter(IntegerConverter):
    """A positive id in ASCII digits, as the API writes it: no sign, no leading
    zero, at most 10 digits (a 32-bit column's width). Anything else matches no
    route, so it is a 404 for every method (a converter that refuses a value
    after matching would make Werkzeug answer 405)."""

    regex = r"[1-9][0-9]{0,9}"


def init_routing(app: Flask) -> None:
    """Set up ``app.url_map``; call before any blueprint adds its rules."""
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    app.url_map.converters["int"] = AsciiIntegerConverter
    app.before_request(refuse_long_query_strings)


def refuse_long_query_strings() -> None:
    query_string = request.environ.get("QUERY_STRING", "")
    if len(query_string) <= QUERY_STRING_MAX_LENGTH // 3:
        return
    # Measured as links write it (characters URLs must escape count as their
    # escapes), without the cursor, which a link replaces.
    cursor = request.args.get("cursor", "")
    if len(quote(query_string, safe="%&=+")) - len(cursor) > QUERY_STRING_MAX_LENGTH:
        abort(414, f"The query string (the cursor aside) is over {QUERY_STRING_MAX_LENGTH} bytes.")


def link_url(endpoint: str, **values) -> str:
    """The URL of ``endpoint`` for a response header (see the module's docstring)."""
    path = url_for(endpoint, **values)
    public_url = current_app.config.get("PUBLIC_URL")
    if public_url:
        return public_url + path
    if current_app.config.get("TRUSTED_PROXIES") and "HTTP_X_FORWARDED_HOST" in request.environ:
        return url_for(endpoint, _external=True, **values)  # the proxy's scheme and host
    return path
