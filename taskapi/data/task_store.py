"""Data access for tasks: every statement that reads or writes the tasks table.

Each function takes the authenticated user's id and scopes its statement by
it. Statements are Core, run on the session's connection, with rows as
mappings: a request never needs the ORM's identity map or unit of work, and
skipping them is most of the cost the ORM would add. The hot ones are built
once: a get is one SELECT, a create one INSERT ... RETURNING, a write one
UPDATE ... RETURNING that also checks If-Match, a page one SELECT.

A task's tags are stored twice: as the JSON array the task shows (read with
the row, at no extra cost) and as task_tags rows (one per tag, case-folded)
that the tag filter and the tag list use. Both are written here, in one
transaction, by ``replace_tag_rows``; so are a completed recurring task and
its next occurrence (``spawn_next``). Writes that need no second statement
stay single statements.

Every write takes the user's next change number (``taskapi.data.change_numbers``,
which says how that orders the change feed) in the same statement, or the
same transaction. A task in the trash (``deleted_at`` set) is gone for every
statement here: reads, writes, lists and counts see only live tasks; the
trash has its own module, ``taskapi.data.trash_store``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    not_,
    select,
    true,
    tuple_,
    update,
)

from ..extensions import db
from ..recurrence import check_schedule, next_due_at
from .change_numbers import run_stamped
from .database import atomic
from .models import TASK_ID_MAX, Task, TaskTag, folded, utcnow
from .pagination import NULLABLE_SORTS, FilterShape, Page, Position, TaskQuery, position_of

TASKS = Task.__table__
TAGS = TaskTag.__table__
# What reads return: the task and its version, not the bookkeeping of its series.
READ_COLUMNS = [
    column for column in TASKS.c if column.name not in ("occurrence", "spawned_at_version")
]
LIVE = TASKS.c.deleted_at.is_(None)
SELECT_TASK = select(*READ_COLUMNS).where(
    TASKS.c.id == bindparam("task_id"), TASKS.c.user_id == bindparam("user_id"), LIVE
)
INSERT_TASK = insert(TASKS).returning(*TASKS.c)  # columns from the parameters
INSERT_TAGS = insert(TAGS)
# Fields a write can send that need more than the one UPDATE: tag rows, or a
# check of the schedule against the values the write did not send.
TAG_AND_SCHEDULE_FIELDS = {"tags", "recurrence", "due_at", "time_zone"}
# What the next occurrence of a recurring task copies from the completed one.
COPIED_FIELDS = ("title", "description", "priority", "tags", "recurrence", "time_zone")
# SQLite takes at most 32,766 bound values in one statement.
IDS_PER_STATEMENT = 10_000

SORT_COLUMNS = {
    "created_at": TASKS.c.created_at,
    "updated_at": TASKS.c.updated_at,
    "title": TASKS.c.title,
    "due_at": TASKS.c.due_at,
    "priority": TASKS.c.priority,
    "remind_at": TASKS.c.remind_at,
}


class Written(NamedTuple):
    """A task as a write left it, and the next occurrence that write created, if any."""

    task: RowMapping
    next_task: RowMapping | None = None


def one_row(statement, parameters=None) -> RowMapping | None:
    """The first row of a statement, as a mapping of column names."""
    return db.session.connection().execute(statement, parameters).mappings().first()


def can_exist(task_id: int) -> bool:
    """Ids past the column's range cannot exist (and the database would reject them)."""
    return task_id <= TASK_ID_MAX


def get_task(user_id: str, task_id: int) -> RowMapping | None:
    if not can_exist(task_id):
        return None
    return one_row(SELECT_TASK, {"task_id": task_id, "user_id": user_id})


def task_exists(user_id: str, task_id: int) -> bool:
    return can_exist(task_id) and bool(
        db.session.scalar(select(exists().where(*owned_task(user_id, task_id), LIVE)))
    )


def insert_task(user_id: str, fields: dict) -> RowMapping:
    now = utcnow()
    values = {"user_id": user_id, "created_at": now, "updated_at": now, **fields}
    if not values.get("tags") and values.get("recurrence") is None:
        return run_stamped(user_id, INSERT_TASK, values)[0]
    check_schedule(values)
    with atomic():
        task = insert_with_tags(values)
        if task["recurrence"] is not None:  # the first of its series
            task = write_task(user_id, task["id"], {"series_id": task["id"]}, None, bump=False)
    return task


def insert_with_tags(values: dict) -> RowMapping:
    (task,) = run_stamped(values["user_id"], INSERT_TASK, values)
    insert_tag_rows([task])
    return task


def update_task(
    user_id: str, task_id: int, changes: dict, *, versions: list[int] | None
) -> Written | None:
    """Apply ``changes`` if the task has one of ``versions`` (None: any).

    None when no task matched: missing, or at another version.
    """
    completing = changes.get("completed") is True
    if not completing and not changes.keys() & TAG_AND_SCHEDULE_FIELDS:
        task = write_task(user_id, task_id, changes, versions)
        return Written(task) if task else None
    values = dict(changes)
    if changes.get("recurrence") is not None:  # a task that recurs belongs to a series
        values["series_id"] = func.coalesce(TASKS.c.series_id, TASKS.c.id)
    if completing:
        recurrence = literal(changes.get("recurrence"), String) if "recurrence" in changes else None
        values |= first_completion(true(), recurrence)
    with atomic():
        task = write_task(user_id, task_id, values, versions)
        if task is None:
            return None
        if changes.keys() & {"recurrence", "due_at", "time_zone"}:
            check_schedule(task)  # with the stored values the write did not send
        if "tags" in changes:
            replace_tag_rows([task])
        return Written(task, spawn_next(task))


def set_completed(
    user_id: str, task_id: int, completed: bool, *, versions: list[int] | None
) -> Written | None:
    """Set ``completed`` (``update_task`` with that one field)."""
    return update_task(user_id, task_id, {"completed": completed}, versions=versions)


def toggle_completed(user_id: str, task_id: int, *, versions: list[int] | None) -> Written | None:
    """Flip ``completed`` in one UPDATE; a recurring task completed spawns as ``update_task``."""
    flipped = not_(TASKS.c.completed)  # SET completed = NOT completed: the row's own value
    with atomic():
        task = write_task(
            user_id, task_id, {"completed": flipped, **first_completion(flipped)}, versions
        )
        return Written(task, spawn_next(task)) if task else None


def first_completion(completed, recurrence=None) -> dict:
    """The SET clause that marks the write completing a recurring task for the first time.

    A task spawns at most one next occurrence, and the database guarantees it:
    ``spawned_at_version`` is set, only while it is null and only by a write
    that turns the task from pending to completed while it recurs, to that
    write's own new version; nothing ever clears it. The UPDATE computes this
    from the row it changes and holds the row's lock until its transaction
    ends: a concurrent completion waits, then (PostgreSQL re-reads the
    committed row; SQLite has one writer at a time) finds the column set.
    So of any completions, retries, or complete / un-complete / complete
    again, exactly one write finds ``spawned_at_version`` equal to its version,
    and only that write inserts the next occurrence (``spawn_next``), in the
    same transaction: if the insert fails, the mark is rolled back with it.
    """
    recurs = (TASKS.c.recurrence if recurrence is None else recurrence).is_not(None)
    is_first = and_(
        TASKS.c.spawned_at_version.is_(None), TASKS.c.completed == false(), completed, recurs
    )
    return {
        "spawned_at_version": case(
            (is_first, TASKS.c.version + 1), else_=TASKS.c.spawned_at_version
        )
    }


def spawn_next(task: RowMapping) -> RowMapping | None:
    """Insert the next occurrence if ``task`` was just completed for the first time (above)."""
    if task["spawned_at_version"] != task["version"] or task["recurrence"] is None:
        return None
    due_at = next_due_at(task)
    if due_at is None:  # COUNT or UNTIL reached: the series ends here
        return None
    remind_at = task["remind_at"]
    if remind_at is not None:  # as long before (or after) the new due_at as before the old
        try:
            remind_at += due_at - task["due_at"]
        except OverflowError:  # a reminder near year 9999 has no later equal
            remind_at = None
    now = utcnow()
    return insert_with_tags(
        {name: task[name] for name in ("user_id", *COPIED_FIELDS, "series_id")}
        | {"occurrence": task["occurrence"] + 1, "due_at": due_at, "remind_at": remind_at}
        | {"created_at": now, "updated_at": now}
    )


def write_task(
    user_id: str, task_id: int, values: dict, versions: list[int] | None, *, bump: bool = True
) -> RowMapping | None:
    """One atomic UPDATE ... RETURNING: the If-Match check, the write and a new version."""
    if not can_exist(task_id):
        return None
    if bump:
        values = values | {"version": TASKS.c.version + 1, "updated_at": utcnow()}
    rows = run_stamped(
        user_id,
        update(TASKS)
        .where(*owned_task(user_id, task_id), LIVE, version_matches(versions))
        .values(**values)
        .returning(*TASKS.c),
    )
    return rows[0] if rows else None


def replace_tag_rows(tasks: list[RowMapping]) -> None:
    """Make the tasks' task_tags rows match their tags (inside a transaction)."""
    ids = [task["id"] for task in tasks]
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[start : start + IDS_PER_STATEMENT]
        db.session.connection().execute(delete(TAGS).where(TAGS.c.task_id.in_(chunk)))
    insert_tag_rows(tasks)


def insert_tag_rows(tasks: list[RowMapping]) -> None:
    rows = [
        {
            "task_id": task["id"],
            "user_id": task["user_id"],
            "name": name,
            "name_folded": folded(name),
        }
        for task in tasks
        for name in task["tags"]
    ]
    if rows:
        db.session.connection().execute(INSERT_TAGS, rows)


def owned_task(user_id: str, task_id: int) -> tuple:
    """The WHERE clause for one of the user's tasks."""
    return TASKS.c.id == task_id, TASKS.c.user_id == user_id


def version_matches(versions: list[int] | None) -> ColumnElement[bool]:
    return true() if versions is None else TASKS.c.version.in_(versions)


# Listing: keyset pages (taskapi.data.pagination says how a walk stays stable).


def filtered(statement: Select, shape: FilterShape) -> Select:
    """``statement`` narrowed to one user's tasks matching a filter of ``shape``."""
    user_id = bindparam("user_id")
    statement = statement.where(TASKS.c.user_id == user_id, LIVE)
    status = shape.status
    if status == "pending":
        statement = statement.where(TASKS.c.completed == false())
    elif status == "completed":
        statement = statement.where(TASKS.c.completed == true())
    elif status == "overdue":
        now = bindparam("now", type_=TASKS.c.due_at.type)
        statement = statement.where(TASKS.c.completed == false(), TASKS.c.due_at < now)
    if shape.has_q:  # % _ and / in q are escaped (filter_parameters): they match literally
        pattern = bindparam("pattern")
        statement = statement.where(
            TASKS.c.title.ilike(pattern, escape="/")
            | TASKS.c.description.ilike(pattern, escape="/")
        )
    for n in range(shape.tag_count):  # every tag named: one indexed lookup each
        statement = statement.where(
            exists().where(
                TAGS.c.task_id == TASKS.c.id,
                TAGS.c.user_id == user_id,
                TAGS.c.name_folded == bindparam(f"tag_{n}"),
            )
        )
    time = TASKS.c.due_at.type
    if shape.has_due_after:
        statement = statement.where(TASKS.c.due_at >= bindparam("due_after", type_=time))
    if shape.has_due_before:
        statement = statement.where(TASKS.c.due_at < bindparam("due_before", type_=time))
    if shape.has_remind_before:
        statement = statement.where(TASKS.c.remind_at <= bindparam("remind_before", type_=time))
    return statement


@lru_cache(maxsize=256)
def count_statement(shape: FilterShape) -> Select:
    if shape.tags_only:
        return tag_count_statement(shape.tag_count)
    return filtered(select(func.count()).select_from(TASKS), shape)


def tag_count_statement(tag_count: int) -> Select:
    """How many of the user's tasks carry every tag, from the tag index alone.

    A task_tags row exists exactly while its task carries the tag, so with no
    other filter the tasks table need not be read: for a tag on 10,000 of a
    user's 100,000 tasks, an index-only scan of 10,000 entries instead of a
    join with 100,000. (Tasks leaving the user's lists, such as trashed
    ones, must leave task_tags too for this to hold.)
    """
    first, *others = [TAGS.alias(f"tag_{n}") for n in range(tag_count)]
    user_id = bindparam("user_id")
    statement = select(func.count()).select_from(first)
    statement = statement.where(
        first.c.user_id == user_id, first.c.name_folded == bindparam("tag_0")
    )
    for n, other in enumerate(others, 1):
        statement = statement.where(
            exists().where(
                other.c.task_id == first.c.task_id,
                other.c.user_id == user_id,
                other.c.name_folded == bindparam(f"tag_{n}"),
            )
        )
    return statement


def fetch_page(query: TaskQuery, limit: int, after: Position | None) -> Page:
    """Up to ``limit`` tasks after ``after``, where the next page starts, and the total.

    The total rides along in the page query (a scalar subquery), so a page
    costs one round trip; only an empty page after a cursor needs a second.
    """
    connection = db.session.connection()
    parameters = filter_parameters(query)
    segments = 2 if query.key in NULLABLE_SORTS else 1
    segment = after.segment if after else 0
    rows: list = []
    while segment < segments and len(rows) <= limit:
        resume = after if after and after.segment == segment else None
        statement = page_statement(query.shape, query.sort, segment, resume is not None)
        values = parameters | {"limit": limit + 1 - len(rows)}
        if resume is not None:
            values |= {"after_value": resume.value, "after_id": resume.id}
        rows += connection.execute(statement, values).mappings().all()
        segment += 1
    if rows:
        total = rows[0]["total"]
    elif after:  # past the end: the count is still the filter's
        total = connection.execute(count_statement(query.shape), parameters).scalar()
    else:
        total = 0
    tasks = rows[:limit]
    next_position = position_of(query, tasks[-1]) if len(rows) > limit else None
    return Page(tasks, next_position, total)


def filter_parameters(query: TaskQuery) -> dict:
    """Values for the bind parameters of ``filtered``'s statements."""
    escaped = query.q.replace("/", "//").replace("%", "/%").replace("_", "/_")
    tags = {f"tag_{n}": name for n, name in enumerate(query.tags)}
    return {
        "user_id": query.user_id,
        "pattern": f"%{escaped}%",
        "now": utcnow(),
        "due_after": query.due_after,
        "due_before": query.due_before,
        "remind_before": query.remind_before,
        **tags,
    }


@lru_cache(maxsize=1024)
def page_statement(shape: FilterShape, sort: str, segment: int, resume: bool) -> Select:
    """The page query for one shape of request, built once; values are bound."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    column = SORT_COLUMNS[key]
    total = count_statement(shape).scalar_subquery().label("total")
    statement = filtered(select(*READ_COLUMNS, total), shape)
    after_id = bindparam("after_id", type_=TASKS.c.id.type)
    if segment == 1:  # the rows whose sort value is null, by id alone
        statement = statement.where(column.is_(None))
        order, position, after = (TASKS.c.id,), TASKS.c.id, after_id
    else:
        if key in NULLABLE_SORTS:
            statement = statement.where(column.is_not(None))
        order, position = (column, TASKS.c.id), tuple_(column, TASKS.c.id)
        after = tuple_(bindparam("after_value", type_=column.type), after_id)
    if resume:
        statement = statement.where(position < after if descending else position > after)
    if descending:
        order = tuple(part.desc() for part in order)
    return statement.order_by(*order).limit(bindparam("limit", type_=Integer))
