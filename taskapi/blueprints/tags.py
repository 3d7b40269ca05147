"""Tag endpoints: ``/api/{user_id}/tags``, the user's tags across all their tasks.

``{name}`` is the tag's name, percent-encoded, matched case-insensitively.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, abort, jsonify
from marshmallow import ValidationError

from ..auth.limits import user_rate_limit
from ..auth.tokens import auth_required
from ..auth.users import provision_user
from ..data import tag_store
from ..http.bodies import load_json
from ..http.openapi import documented, success
from ..http.responses import no_content
from ..schemas.tags import TagName, TagRenameSchema, tag_rename_schema

bp = Blueprint("tags", __name__, url_prefix="/api/<user_id>/tags")

TAG_URL = "/<path:name>"  # a tag may contain "/", sent as %2F


@bp.get("")
@documented(responses={200: success({"type": "array", "items": "Tag"})})
@auth_required
@user_rate_limit
@provision_user
def list_tags(user_id: str):
    """List every tag on the user's tasks, with how many tasks carry it."""
    return jsonify([dict(tag) for tag in tag_store.list_tags(user_id)])


@bp.patch(TAG_URL)
@documented(body=TagRenameSchema, responses={200: success("Tag")}, errors=(404,))
@auth_required
@user_rate_limit
@provision_user
def rename_tag(user_id: str, name: str):
    """Rename a tag on every task; tasks that have both names keep one."""
    new_name = load_json(tag_rename_schema)["name"]
    tag = tag_store.rename_tag(user_id, tag_name(name), new_name)
    return jsonify(dict(tag or abort_unknown_tag()))


@bp.delete(TAG_URL)
@documented(responses={204: success(description="Removed from every task")}, errors=(404,))
@auth_required
@user_rate_limit
@provision_user
def delete_tag(user_id: str, name: str):
    """Remove a tag from every task."""
    if not tag_store.delete_tag(user_id, tag_name(name)):
        abort_unknown_tag()
    return no_content()


def tag_name(name: str) -> str:
    """The tag ``name`` from the URL; a name no tag can have is unknown (404)."""
    try:
        return TagName().deserialize(name)
    except ValidationError:
        abort_unknown_tag()


def abort_unknown_tag() -> NoReturn:
    abort(404, "No task has this tag.")
