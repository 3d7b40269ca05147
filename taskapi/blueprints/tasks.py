"""Task endpoints: ``/api/{user_id}/tasks``, each scoped to the token's user.

Every view reads the same way: authorise and parse (the decorators), call
``taskapi.data.task_store`` (or ``task_list``), respond.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, Response, abort, jsonify, url_for
from sqlalchemy import RowMapping

from ..auth.decorators import user_view
from ..data import task_list, task_store, trash_store
from ..data.task_list import TaskQuery
from ..http.arguments import arguments
from ..http.cursors import decode_cursor, task_listing
from ..http.etags import (
    abort_stale,
    check_if_match,
    etag_of,
    has_if_match,
    if_match_versions,
    if_none_match_names,
)
from ..http.idempotency import idempotency_key, run_once
from ..http.openapi import IDEMPOTENCY_KEY, IF_MATCH, IF_NONE_MATCH, documented, success
from ..http.responses import no_content, page_response, task_response
from ..schemas.tasks import (
    ClearCompletedQuerySchema,
    CompleteSchema,
    TaskListQuerySchema,
    TaskSchema,
    TaskUpdateSchema,
    task_json,
    task_list_query_schema,
)
from ..schemas.trash import DeletedCountSchema

bp = Blueprint("tasks", __name__, url_prefix="/api/<user_id>/tasks")

TASK_URL = "/<int:task_id>"
# OpenAPI success responses several views share.
TASK_WITH_ETAG = success("Task", headers=("ETag",))
TASK_WITH_ETAG_AND_LINK = success("Task", headers=("ETag", "Link"))  # Link: a next occurrence


@bp.get("")
@documented(
    responses={200: success({"type": "array", "items": "Task"}, headers=("Link", "X-Total-Count"))},
    errors=(400,),
)
@user_view
@arguments(TaskListQuerySchema, location="query")
def list_tasks(user_id: str, args: dict):
    """List the user's tasks: filtered, sorted, one page at a time."""
    query = TaskQuery(
        user_id=user_id,
        status=args["status"],
        q=args["q"],
        sort=args["sort"],
        tags=args["tag"],
        due_after=args["due_after"],
        due_before=args["due_before"],
        remind_before=args["remind_before"],
    )
    listing = task_listing(query)
    page = task_list.fetch_task_page(query, args["limit"], decode_cursor(listing, args["cursor"]))
    dumped = task_list_query_schema.dump(args)  # times and tags back to their text
    link_args = {key: value for key, value in dumped.items() if value and key != "cursor"}
    tasks = [task_json(task) for task in page.rows]
    return page_response(tasks, page, listing, "tasks.list_tasks", user_id=user_id, **link_args)


@bp.post("")
@documented(
    headers=(IDEMPOTENCY_KEY,),
    responses={201: success("Task", "Created", headers=("ETag", "Location"))},
    errors=(409,),
)
@user_view
@arguments(TaskSchema)
def create_task(user_id: str, body: dict):
    """Create a task; with an Idempotency-Key, at most once."""
    key = idempotency_key()

    def create() -> Response:
        task = task_store.insert_task(user_id, body)
        location = url_for("tasks.get_task", user_id=user_id, task_id=task["id"])
        return task_response(task, 201, Location=location)

    return create() if key is None else run_once(user_id, key, create)


@bp.get(TASK_URL)
@documented(
    headers=(IF_MATCH, IF_NONE_MATCH), responses={200: TASK_WITH_ETAG}, errors=(304, 404, 412)
)
@user_view
def get_task(user_id: str, task_id: int):
    """Get one task; 304 when If-None-Match names its current ETag.

    As RFC 9110 orders the preconditions: a stale If-Match is 412 first, then
    If-None-Match (weak comparison, ``*`` too) is 304.
    """
    task = task_store.get_task(user_id, task_id) or abort_not_found()
    check_if_match(task)
    if if_none_match_names(task):
        return not_modified(task)
    return task_response(task)


@bp.put(TASK_URL)
@bp.patch(TASK_URL)
@documented(headers=(IF_MATCH,), responses={200: TASK_WITH_ETAG_AND_LINK}, errors=(404, 412))
@user_view
@arguments(TaskUpdateSchema)
def update_task(user_id: str, task_id: int, body: dict):
    """Update the fields sent; the others keep their values."""
    versions = if_match_versions(task_id)
    written = task_store.update_task(user_id, task_id, body, versions=versions)
    return written_response(user_id, written or abort_missing_or_stale(user_id, task_id))


@bp.patch(f"{TASK_URL}/complete")
@documented(
    headers=(IF_MATCH, IDEMPOTENCY_KEY),
    responses={200: TASK_WITH_ETAG_AND_LINK},
    errors=(404, 409, 412),
)
@user_view
@arguments(CompleteSchema, required=False)
def complete_task(user_id: str, task_id: int, body: dict | None):
    """Toggle completed, or set it from an optional {"completed": bool} body.

    Completing a recurring task creates its next occurrence (Link rel="next-occurrence").
    With an Idempotency-Key, a retry returns the first answer instead of toggling again.
    """
    versions = if_match_versions(task_id)
    key = idempotency_key()

    def complete() -> Response:
        if body is None:
            written = task_store.toggle_completed(user_id, task_id, versions=versions)
        else:
            written = task_store.set_completed(
                user_id, task_id, body["completed"], versions=versions
            )
        return written_response(user_id, written or abort_missing_or_stale(user_id, task_id))

    return complete() if key is None else run_once(user_id, key, complete)


@bp.delete("")
@documented(responses={200: success(DeletedCountSchema)}, errors=(400,))
@user_view
@arguments(ClearCompletedQuerySchema, location="query")
def clear_completed(user_id: str, args: dict):  # args: status=completed, the schema checks it
    """Move every completed task to the trash ("clear completed"); needs status=completed."""
    return jsonify({"deleted": trash_store.trash_completed(user_id)})


@bp.delete(TASK_URL)
@documented(
    headers=(IF_MATCH,),
    responses={204: success(description="Moved to the trash")},
    errors=(404, 412),
)
@user_view
def delete_task(user_id: str, task_id: int):
    """Delete a task: it moves to the trash."""
    versions = if_match_versions(task_id)
    if not trash_store.trash_task(user_id, task_id, versions=versions):
        abort_missing_or_stale(user_id, task_id)
    return no_content()


def not_modified(task: RowMapping) -> Response:
    response = Response(status=304)
    response.set_etag(etag_of(task))
    return response


def written_response(user_id: str, written: task_store.Written) -> Response:
    """The task a write left; a Link to the next occurrence the write created, if any."""
    response = task_response(written.task)
    if written.next_task is not None:
        url = url_for("tasks.get_task", user_id=user_id, task_id=written.next_task["id"])
        response.headers["Link"] = f'<{url}>; rel="next-occurrence"'
    return response


def abort_missing_or_stale(user_id: str, task_id: int) -> NoReturn:
    """After a write matched no row: 412 if the task exists but If-Match is stale, else 404."""
    if has_if_match() and task_store.task_exists(user_id, task_id):
        abort_stale()
    abort_not_found()


def abort_not_found() -> NoReturn:
    abort(404, "Task not found.")
