"""Tag endpoints: ``/api/{user_id}/tags``, the user's tags across all their tasks.

``{name}`` is the tag's name, percent-encoded, matched case-insensitively.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, abort, jsonify
from marshmallow import ValidationError

from ..auth.decorators import user_view
from ..data import tag_store
from ..http.arguments import arguments
from ..http.openapi import documented, success
from ..http.responses import no_content
from ..schemas.tags import TagName, TagRenameSchema

bp = Blueprint("tags", __name__, url_prefix="/api/<user_id>/tags")

TAG_URL = "/<path:name>"  # a tag may contain "/", sent as %2F


@bp.get("")
@documented(responses={200: success({"type": "array", "items": "Tag"})})
@user_view
def list_tags(user_id: str):
    """List every tag on the user's tasks, with how many tasks carry it."""
    return jsonify([dict(tag) for tag in tag_store.list_tags(user_id)])


@bp.patch(TAG_URL)
@documented(responses={200: success("Tag")}, errors=(404,))
@user_view
@arguments(TagRenameSchema)
def rename_tag(user_id: str, name: str, body: dict):
    """Rename a tag on every task; tasks that have both names keep one."""
    tag = tag_store.rename_tag(user_id, tag_name(name), body["name"])
    return jsonify(dict(tag or abort_unknown_tag()))


@bp.delete(TAG_URL)
@documented(responses={204: success(description="Removed from every task")}, errors=(404,))
@user_view
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
