"""Task endpoints: ``/api/{user_id}/tasks``, each scoped to the token's user."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, request, url_for
from marshmallow import ValidationError
from sqlalchemy import RowMapping, bindparam, delete, exists, insert, select, update

from ..auth import auth_required
from ..bodies import load_json
from ..etags import etag_of, has_if_match, if_match_condition
from ..extensions import db
from ..idempotency import idempotency_key, run_once
from ..models import TASK_ID_MAX, Task, utcnow
from ..pagination import (
    BadCursor,
    TaskQuery,
    decode_cursor,
    encode_cursor,
    fetch_page,
)
from ..schemas.tasks import (
    complete_schema,
    task_json,
    task_list_query_schema,
    task_schema,
    task_update_schema,
)

bp = Blueprint("tasks", __name__, url_prefix="/api/<user_id>/tasks")

TASK_URL = "/<int:task_id>"
# Views read and write the table directly (Core, rows as mappings): a request
# never needs the ORM's identity map or unit of work, and skipping them is
# most of the per-request cost the ORM would add.
TASKS = Task.__table__
# Built once: the hottest statements need not be assembled on every request.
SELECT_TASK = select(*TASKS.c).where(
    TASKS.c.id == bindparam("task_id"), TASKS.c.user_id == bindparam("user_id")
)
INSERT_TASK = insert(TASKS).returning(*TASKS.c)  # columns from the parameters


@bp.get("")
@auth_required
def list_tasks(user_id: str):
    """List the user's tasks: filtered, sorted, one page at a time."""
    args = task_list_query_schema.load(request.args)
    query = TaskQuery(user_id, args["status"], args["q"], args["sort"])
    try:
        after = decode_cursor(query, args["cursor"]) if args["cursor"] else None
    except BadCursor as error:
        raise ValidationError({"cursor": [str(error)]}) from None
    page = fetch_page(query, args["limit"], after)
    response = jsonify([task_json(task) for task in page.tasks])
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_position:
        next_args = {key: value for key, value in args.items() if value}
        next_args["cursor"] = encode_cursor(query, page.next_position)
        next_url = url_for("tasks.list_tasks", user_id=user_id, _external=True, **next_args)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


@bp.post("")
@auth_required
def create_task(user_id: str):
    """Create a task; with an Idempotency-Key, at most once."""
    fields = load_json(task_schema)
    key = idempotency_key()

    def create() -> Response:
        now = utcnow()
        values = {"user_id": user_id, "created_at": now, "updated_at": now, **fields}
        task = one_row(INSERT_TASK, values)
        location = url_for("tasks.get_task", user_id=user_id, task_id=task["id"])
        return task_response(task, 201, Location=location)

    if key is not None:
        return run_once(user_id, key, create)
    response = create()
    db.session.commit()
    return response


@bp.get(TASK_URL)
@auth_required
def get_task(user_id: str, task_id: int):
    """Get one task; 304 when If-None-Match names its current ETag."""
    check_task_id(task_id)
    task = one_row(SELECT_TASK, {"task_id": task_id, "user_id": user_id})
    if task is None:
        abort_not_found()
    response = task_response(task)
    if request.if_none_match or request.if_match:
        response.make_conditional(request)  # 304 (or 412) as RFC 9110 says
    return response


@bp.put(TASK_URL)
@bp.patch(TASK_URL)
@auth_required
def update_task(user_id: str, task_id: int):
    """Update the fields sent; the others keep their values."""
    changes = load_json(task_update_schema)
    return task_response(write_task(user_id, task_id, **changes))


@bp.patch(f"{TASK_URL}/complete")
@auth_required
def complete_task(user_id: str, task_id: int):
    """Toggle completed, or set it from an optional {"completed": bool} body."""
    body = load_json(complete_schema, optional=True)
    completed = ~TASKS.c.completed if body is None else body["completed"]
    return task_response(write_task(user_id, task_id, completed=completed))


@bp.delete(TASK_URL)
@auth_required
def delete_task(user_id: str, task_id: int):
    """Delete a task."""
    result = db.session.connection().execute(
        delete(TASKS).where(*owned_task(user_id, task_id), if_match_condition(task_id))
    )
    if result.rowcount == 0:
        abort_missing_or_stale(user_id, task_id)
    db.session.commit()
    return no_content()


def write_task(user_id: str, task_id: int, **values) -> RowMapping:
    """Apply ``values`` in one atomic UPDATE ... RETURNING, checking If-Match in it."""
    task = one_row(
        update(TASKS)
        .where(*owned_task(user_id, task_id), if_match_condition(task_id))
        .values(**values, version=TASKS.c.version + 1, updated_at=utcnow())
        .returning(*TASKS.c)
    )
    if task is None:
        abort_missing_or_stale(user_id, task_id)
    db.session.commit()
    return task


def one_row(statement, parameters=None) -> RowMapping | None:
    """The first row of a statement, as a mapping of column names.

    Run on the session's connection: Core statements need none of the ORM's
    execution machinery, which costs more than the query itself.
    """
    return db.session.connection().execute(statement, parameters).mappings().first()


def task_response(task: RowMapping, status: int = 200, **headers: str) -> Response:
    response = jsonify(task_json(task))
    response.status_code = status
    response.set_etag(etag_of(task))
    response.headers.update(headers)
    return response


def owned_task(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks."""
    check_task_id(task_id)
    return TASKS.c.id == task_id, TASKS.c.user_id == user_id


def check_task_id(task_id: int) -> None:
    if task_id > TASK_ID_MAX:  # cannot exist, and the database would reject the number
        abort_not_found()


def abort_missing_or_stale(user_id: str, task_id: int):
    """After a write matched no row: 412 if the task exists but If-Match is stale, else 404."""
    db.session.rollback()
    if has_if_match() and db.session.scalar(select(exists().where(*owned_task(user_id, task_id)))):
        abort(412, "The task has changed since the ETag in If-Match; fetch it and retry.")
    abort_not_found()


def no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # there is no body to describe
    return response


def abort_not_found():
    abort(404, "Task not found.")
