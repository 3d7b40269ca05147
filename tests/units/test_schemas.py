"""The hand-written task_json stays equal to TaskSchema's dump, field by field."""

from __future__ import annotations

from sqlalchemy import select

from taskapi.data.models import Task
from taskapi.extensions import db
from taskapi.schemas.tasks import TaskSchema, task_json


def test_task_json_equals_the_schema_dump(app, create_task):
    create_task(title="plain")
    create_task(
        title="full",
        description="d",
        completed=True,
        priority="high",
        due_at="2026-12-01T09:30:00.5+02:00",
        tags=["Work", "ünï"],
        recurrence="FREQ=WEEKLY;BYDAY=MO",
        time_zone="Europe/Berlin",
        remind_at="2026-12-01T07:00:00Z",
    )
    with app.app_context():
        rows = db.session.execute(select(*Task.__table__.columns)).mappings().all()
    schema = TaskSchema()
    assert len(rows) == 2
    assert {row["series_id"] for row in rows} == {None, max(row["id"] for row in rows)}
    for row in rows:
        assert task_json(row) == schema.dump(row)
        assert list(task_json(row)) == list(schema.dump_fields)
