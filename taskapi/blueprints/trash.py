"""Trash endpoints: ``/api/{user_id}/trash``, the user's deleted tasks (docs/api.md, "Trash")."""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, abort

from ..auth.decorators import user_view
from ..data import trash_store
from ..http.arguments import arguments
from ..http.cursors import decode_cursor, trash_listing
from ..http.openapi import documented, success
from ..http.responses import no_content, page_response, task_response
from ..schemas.trash import TrashQuerySchema, trashed_task_json

bp = Blueprint("trash", __name__, url_prefix="/api/<user_id>/trash")

TASK_URL = "/<int:task_id>"


@bp.get("")
@documented(
    responses={
        200: success({"type": "array", "items": "TrashedTask"}, headers=("Link", "X-Total-Count"))
    },
    errors=(400,),
)
@user_view
@arguments(TrashQuerySchema, location="query")
def list_trash(user_id: str, args: dict):
    """List the tasks in the trash, latest deletion first, one page at a time."""
    listing = trash_listing(user_id)
    after = decode_cursor(listing, args["cursor"])
    page = trash_store.fetch_trash_page(user_id, args["limit"], after)
    tasks = [trashed_task_json(task) for task in page.rows]
    return page_response(
        tasks, page, listing, "trash.list_trash", user_id=user_id, limit=args["limit"]
    )


@bp.delete("")
@documented(responses={204: success(description="Trash emptied")})
@user_view
def empty_trash(user_id: str):
    """Delete every task in the trash for good."""
    trash_store.empty_trash(user_id)
    return no_content()


@bp.post(f"{TASK_URL}/restore")
@documented(responses={200: success("Task", headers=("ETag",))}, errors=(404,))
@user_view
def restore_task(user_id: str, task_id: int):
    """Bring a task back from the trash, with a new ETag."""
    task = trash_store.restore_task(user_id, task_id) or abort_not_in_trash()
    return task_response(task)


@bp.delete(TASK_URL)
@documented(responses={204: success(description="Deleted for good")}, errors=(404,))
@user_view
def erase_task(user_id: str, task_id: int):
    """Delete a task in the trash for good."""
    if not trash_store.erase_task(user_id, task_id):
        abort_not_in_trash()
    return no_content()


def abort_not_in_trash() -> NoReturn:
    abort(404, "No such task in the trash.")
