"""The change feed: ``/api/{user_id}/changes``, what changed since a token.

Its contract: docs/api.md, "Change feed (sync)".
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify

from ..auth.decorators import user_view
from ..data.change_feed import TokenExpired, read_changes
from ..http.arguments import arguments
from ..http.cursors import decode_feed_token, encode_feed_token
from ..http.openapi import documented, success
from ..schemas.changes import ChangesQuerySchema, change_json

bp = Blueprint("changes", __name__, url_prefix="/api/<user_id>/changes")


@bp.get("")
@documented(responses={200: success("Changes")}, errors=(400, 410))
@user_view
@arguments(ChangesQuerySchema, location="query")
def list_changes(user_id: str, args: dict):
    """List what changed since a token: tasks in their latest state, and deletions.

    Without since: every task. Store next and pass it as since on the next poll;
    more: true means read on at once. 410: the token is too old, start again without since.
    """
    since = decode_feed_token(user_id, args["since"])
    try:
        page, next_token = read_changes(user_id, since, args["limit"])
    except TokenExpired:
        abort(
            410, "The token is too old, or the feed began again since; start again without since."
        )
    return jsonify(
        {
            "changes": [change_json(task) for task in page.changes],
            "next": encode_feed_token(user_id, next_token),
            "more": page.more,
        }
    )
