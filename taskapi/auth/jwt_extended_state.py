"""The one place taskapi writes flask-jwt-extended's private request state.

Written against flask-jwt-extended 4.7.4 (pinned in requirements.txt); a test
fails when another version is installed, or when ``get_jwt()`` and friends
answer otherwise than after the library's own ``verify_jwt_in_request()``.
"""

from __future__ import annotations

from flask import g

WRITTEN_AGAINST = "4.7.4"


def set_request_token(header: dict, claims: dict) -> None:
    """Leave what ``verify_jwt_in_request()`` leaves on ``g`` for ``get_jwt()``,
    ``get_jwt_header()``, ``get_jwt_identity()`` and ``get_jwt_request_location()``.

    taskapi verifies tokens itself (a token it has verified is not decoded
    again), so it cannot call that function; these are the names 4.7.4 reads.
    """
    g._jwt_extended_jwt = claims
    g._jwt_extended_jwt_header = header
    g._jwt_extended_jwt_user = None  # no user_lookup_loader: what flask-jwt-extended leaves
    g._jwt_extended_jwt_location = "headers"
