"""Task endpoints: ``/api/{user_id}/tasks``, each scoped to the token's user."""

from __future__ import annotations

from flask import Blueprint, Response, abort, url_for
from sqlalchemy import delete, select, update

from ..auth import auth_required
from ..bodies import load_json
from ..extensions import db
from ..models import TASK_ID_MAX, Task, utcnow
from ..schemas.tasks import complete_schema, task_schema, task_update_schema, tasks_schema

bp = Blueprint("tasks", __name__, url_prefix="/api/<user_id>/tasks")

TASK_URL = "/<int:task_id>"


@bp.get("")
@auth_required
def list_tasks(user_id: str):
    """List the user's tasks, newest first."""
    tasks = db.session.scalars(
        select(Task).where(Task.user_id == user_id).order_by(Task.created_at.desc(), Task.id.desc())
    )
    return tasks_schema.dump(tasks)


@bp.post("")
@auth_required
def create_task(user_id: str):
    """Create a task."""
    now = utcnow()
    task = Task(user_id=user_id, created_at=now, updated_at=now, **load_json(task_schema))
    db.session.add(task)
    db.session.commit()
    location = url_for("tasks.get_task", user_id=user_id, task_id=task.id)
    return task_schema.dump(task), 201, {"Location": location}


@bp.get(TASK_URL)
@auth_required
def get_task(user_id: str, task_id: int):
    """Get one task."""
    task = db.session.scalar(select(Task).where(*owned_task(user_id, task_id)))
    return task_schema.dump(task or abort_not_found())


@bp.put(TASK_URL)
@bp.patch(TASK_URL)
@auth_required
def update_task(user_id: str, task_id: int):
    """Update the fields sent; the others keep their values."""
    changes = load_json(task_update_schema)
    task = write_task(user_id, task_id, **changes)
    return task_schema.dump(task)


@bp.patch(f"{TASK_URL}/complete")
@auth_required
def complete_task(user_id: str, task_id: int):
    """Toggle ``completed``, or set it from an optional ``{"completed": bool}``."""
    body = load_json(complete_schema, optional=True)
    completed = ~Task.completed if body is None else body["completed"]
    task = write_task(user_id, task_id, completed=completed)
    return task_schema.dump(task)


@bp.delete(TASK_URL)
@auth_required
def delete_task(user_id: str, task_id: int):
    """Delete a task."""
    result = db.session.execute(delete(Task).where(*owned_task(user_id, task_id)))
    db.session.commit()
    if result.rowcount == 0:
        abort_not_found()
    return no_content()


def write_task(user_id: str, task_id: int, **values) -> Task:
    """Apply ``values`` in one atomic UPDATE ... RETURNING, or answer 404."""
    task = db.session.scalar(
        update(Task)
        .where(*owned_task(user_id, task_id))
        .values(**values, updated_at=utcnow())
        .returning(Task),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    return task or abort_not_found()


def owned_task(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks."""
    if task_id > TASK_ID_MAX:  # cannot exist, and the database would reject the number
        abort_not_found()
    return Task.id == task_id, Task.user_id == user_id


def no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # there is no body to describe
    return response


def abort_not_found():
    abort(404, "Task not found.")
