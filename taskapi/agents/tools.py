"""The ten tools: parse the arguments, call the data access the REST views call, shape.

Each tool is a plain function of the token's user id and the call's
arguments, run by ``taskapi.agents.calls`` (scope, rate limit, user row,
worker thread, errors). No tool takes a user id: the user is the token's
``sub``, and every store function scopes its statement by it, so another
user's task id reads exactly like a missing one.

A task, as a tool returns it, is the REST API's task JSON plus its
``version``: the number in the REST ETag (``"17.3"`` is task 17 at version
3), which ``update_task``, ``complete_task`` and ``delete_task`` take as
``expected_version`` (a stale one is refused, as a stale If-Match is 412).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response
from marshmallow import Schema
from sqlalchemy import RowMapping

from ..data import tag_store, task_list, task_store, trash_store
from ..data.change_feed import TokenExpired, read_changes
from ..data.keyset import Page
from ..data.models import TASK_ID_MAX
from ..http.cursors import (
    Listing,
    decode_cursor,
    decode_feed_token,
    encode_cursor,
    encode_feed_token,
    task_listing,
    trash_listing,
)
from ..http.etags import VERSION_MAX
from ..http.idempotency import run_once
from ..schemas.changes import change_json
from ..schemas.tasks import task_json, task_query
from ..schemas.trash import trashed_task_json
from . import outputs
from .arguments import (
    add_task_options,
    changes_arguments,
    completion,
    json_schema,
    list_filters,
    load_arguments,
    new_task,
    no_arguments,
    page_arguments,
    task_changes,
    task_id_arguments,
    versioned_task_id_arguments,
)
from .calls import ToolFailure, not_found
from .tokens import READ_SCOPE, WRITE_SCOPE


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the server lists it, and the function that does its work."""

    name: str
    title: str
    description: str
    arguments: tuple[Schema, ...]  # what loads its arguments: the input schema's source
    output_schema: dict
    scope: str
    run: Callable[[str, dict], dict]  # (user id, raw arguments) -> structured content

    @property
    def read_only(self) -> bool:
        return self.scope == READ_SCOPE

    @property
    def input_schema(self) -> dict:
        return json_schema(*self.arguments)


def agent_task(task: RowMapping) -> dict:
    return task_json(task) | {"version": task["version"]}


def agent_trashed_task(task: RowMapping) -> dict:
    return trashed_task_json(task) | {"version": task["version"]}


def known_task_id(task_id: int) -> int:
    """``task_id`` if a task could have it; else the task is not found (as REST's 404)."""
    if not 1 <= task_id <= TASK_ID_MAX:
        raise not_found()
    return task_id


def versions_of(own: dict) -> list[int] | None:
    """``expected_version`` as the stores take If-Match versions (None: no precondition)."""
    if "expected_version" not in own:
        return None
    version = own["expected_version"]
    return [version] if 0 <= version <= VERSION_MAX else []  # out of range: matches nothing


def missing_or_stale(user_id: str, task_id: int, own: dict) -> ToolFailure:
    """After a write matched no row: stale if the task exists at another version, else missing."""
    if "expected_version" in own and task_store.task_exists(user_id, task_id):
        return ToolFailure(
            412,
            "The task has changed since expected_version; read it again (get_task) "
            "and retry with its current version.",
        )
    return not_found()


# The tools, in the order an agent meets them.


def list_tasks(user_id: str, arguments: dict) -> dict:
    page_args, filters = load_arguments(arguments, page_arguments, list_filters)
    query = task_query(user_id, filters)
    listing = task_listing(query)
    after = decode_cursor(listing, page_args["cursor"])
    page = task_list.fetch_task_page(query, page_args["limit"], after)
    return page_content(page, listing, agent_task)


def page_content(page: Page, listing: Listing, shape: Callable[[RowMapping], dict]) -> dict:
    """A page as list_tasks and list_trash return it: the tasks, where to go on, the total."""
    return {
        "tasks": [shape(task) for task in page.rows],
        "next_cursor": encode_cursor(listing, page.next_position) if page.next_position else None,
        "total": page.total,
    }


def get_task(user_id: str, arguments: dict) -> dict:
    own, _ = load_arguments(arguments, task_id_arguments)
    task = task_store.get_task(user_id, known_task_id(own["task_id"]))
    if task is None:
        raise not_found()
    return {"task": agent_task(task)}


def add_task(user_id: str, arguments: dict) -> dict:
    own, fields = load_arguments(arguments, add_task_options, new_task)
    key = own.get("idempotency_key")
    if key is None:
        return {"task": agent_task(task_store.insert_task(user_id, fields))}

    def create() -> Response:
        task = task_store.insert_task(user_id, fields)
        return Response(json.dumps(task_json(task)), status=201, mimetype="application/json")

    call = {name: value for name, value in arguments.items() if name != "idempotency_key"}
    canonical = json.dumps(["mcp", "add_task", call], sort_keys=True, separators=(",", ":"))
    response = run_once(user_id, key, create, hashlib.sha256(canonical.encode()).hexdigest())
    # A retry gets the task as it is now (run_once refuses one trashed since, as REST does).
    task = task_store.get_task(user_id, json.loads(response.get_data())["id"])
    if task is None:
        raise not_found("The task this call added has since been deleted.")
    return {"task": agent_task(task)}


def update_task(user_id: str, arguments: dict) -> dict:
    own, changes = load_arguments(arguments, versioned_task_id_arguments, task_changes)
    task_id = known_task_id(own["task_id"])
    written = task_store.update_task(user_id, task_id, changes, versions=versions_of(own))
    if written is None:
        raise missing_or_stale(user_id, task_id, own)
    return written_content(written)


def complete_task(user_id: str, arguments: dict) -> dict:
    arguments = {"completed": True} | arguments
    own, body = load_arguments(arguments, versioned_task_id_arguments, completion)
    task_id = known_task_id(own["task_id"])
    written = task_store.set_completed(
        user_id, task_id, body["completed"], versions=versions_of(own)
    )
    if written is None:
        raise missing_or_stale(user_id, task_id, own)
    return written_content(written)


def written_content(written: task_store.Written) -> dict:
    next_task = written.next_task
    return {
        "task": agent_task(written.task),
        "next_occurrence_id": next_task["id"] if next_task is not None else None,
    }


def delete_task(user_id: str, arguments: dict) -> dict:
    own, _ = load_arguments(arguments, versioned_task_id_arguments)
    task_id = known_task_id(own["task_id"])
    if not trash_store.trash_task(user_id, task_id, versions=versions_of(own)):
        raise missing_or_stale(user_id, task_id, own)
    return {"task_id": task_id, "in_trash": True}


def restore_task(user_id: str, arguments: dict) -> dict:
    own, _ = load_arguments(arguments, task_id_arguments)
    task = trash_store.restore_task(user_id, known_task_id(own["task_id"]))
    if task is None:
        raise not_found("No such task in the trash.")
    return {"task": agent_task(task)}


def list_trash(user_id: str, arguments: dict) -> dict:
    page_args, _ = load_arguments(arguments, page_arguments)
    listing = trash_listing(user_id)
    after = decode_cursor(listing, page_args["cursor"])
    page = trash_store.fetch_trash_page(user_id, page_args["limit"], after)
    return page_content(page, listing, agent_trashed_task)


def list_tags(user_id: str, arguments: dict) -> dict:
    load_arguments(arguments, no_arguments)
    return {"tags": [dict(tag) for tag in tag_store.list_tags(user_id)]}


def get_changes(user_id: str, arguments: dict) -> dict:
    args, _ = load_arguments(arguments, changes_arguments)
    since = decode_feed_token(user_id, args["since"])
    try:
        page, next_token = read_changes(user_id, since, args["limit"])
    except TokenExpired:
        raise ToolFailure(
            410,
            "The since token is too old, or the feed began again since; call get_changes "
            "without since to read every task again.",
        ) from None
    changes = [
        change_json(row) if row["deleted_at"] is not None else agent_task(row)
        for row in page.changes
    ]
    return {"changes": changes, "next": encode_feed_token(user_id, next_token), "more": page.more}


TOOLS = (
    ToolSpec(
        "list_tasks",
        "List tasks",
        "List the user's tasks (not those in the trash), newest first unless sort says "
        "otherwise. Filter with status (all, pending, completed, overdue: pending and due "
        "before now), q (words in title or description), tag (comma-separated names; tasks "
        "carrying all of them), due_after / due_before and remind_before (RFC 3339 times "
        "with an offset, e.g. 2026-11-30T17:00:00Z). Returns one page: tasks, total (how "
        "many match) and next_cursor (pass it as cursor for the next page; null: no more).",
        (page_arguments, list_filters),
        outputs.TASK_PAGE,
        READ_SCOPE,
        list_tasks,
    ),
    ToolSpec(
        "get_task",
        "Get a task",
        "Get one of the user's tasks by id, with its current version.",
        (task_id_arguments,),
        outputs.ONE_TASK,
        READ_SCOPE,
        get_task,
    ),
    ToolSpec(
        "add_task",
        "Add a task",
        "Add a task for the user. Only title is required. due_at and remind_at are RFC 3339 "
        "times with an offset (convert the user's local time to UTC or give the offset); "
        "priority is low, normal or high; tags a list of short names; recurrence an RFC 5545 "
        "rule without RRULE: (e.g. FREQ=WEEKLY;BYDAY=MO) and needs due_at; time_zone an IANA "
        "name the rule follows (e.g. Europe/Berlin). Give an idempotency_key to make a retry "
        "safe.",
        (add_task_options, new_task),
        outputs.ONE_TASK,
        WRITE_SCOPE,
        add_task,
    ),
    ToolSpec(
        "update_task",
        "Update a task",
        "Change some fields of a task; fields not given keep their values (null clears "
        "description, due_at, remind_at, recurrence or time_zone; tags replaces the whole "
        "list). Setting completed to true on a recurring task creates its next occurrence "
        "(next_occurrence_id). Give expected_version to refuse the change if the task "
        "changed since it was read.",
        (versioned_task_id_arguments, task_changes),
        outputs.WRITTEN_TASK,
        WRITE_SCOPE,
        update_task,
    ),
    ToolSpec(
        "complete_task",
        "Complete a task",
        "Mark a task done (completed: false reopens it). Completing a recurring task "
        "creates its next occurrence once; its id is next_occurrence_id (null when none "
        "was created).",
        (versioned_task_id_arguments, completion),
        outputs.WRITTEN_TASK,
        WRITE_SCOPE,
        complete_task,
    ),
    ToolSpec(
        "delete_task",
        "Delete a task",
        "Move a task to the trash, where it stays restorable (restore_task) for the "
        "retention period (30 days by default).",
        (versioned_task_id_arguments,),
        outputs.DELETED,
        WRITE_SCOPE,
        delete_task,
    ),
    ToolSpec(
        "restore_task",
        "Restore a task",
        "Bring a task back from the trash (list_trash shows what is there).",
        (task_id_arguments,),
        outputs.ONE_TASK,
        WRITE_SCOPE,
        restore_task,
    ),
    ToolSpec(
        "list_trash",
        "List the trash",
        "List the tasks in the user's trash, latest deletion first, one page at a time "
        "(next_cursor as in list_tasks).",
        (page_arguments,),
        outputs.TRASH_PAGE,
        READ_SCOPE,
        list_trash,
    ),
    ToolSpec(
        "list_tags",
        "List tags",
        "List every tag on the user's tasks with how many tasks carry it.",
        (no_arguments,),
        outputs.TAGS,
        READ_SCOPE,
        list_tags,
    ),
    ToolSpec(
        "get_changes",
        "Get changes",
        "What changed in the user's tasks since a token: without since, every task and a "
        "token; with since (the next of the previous answer), the tasks changed since in "
        "their latest state, and {id, deleted: true} for tasks deleted. more: true means "
        "call again at once with next.",
        (changes_arguments,),
        outputs.CHANGES,
        READ_SCOPE,
        get_changes,
    ),
)
