"""Strong ETags for tasks, and the If-Match preconditions of writes (contract 4.3).

A task's ETag is ``"<id>.<version>"``; the version goes up by one on every
write, in the same UPDATE that makes the write, so checking and writing are
one atomic statement.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import request
from sqlalchemy import ColumnElement, true

from .models import Task


def etag_of(task: Mapping) -> str:
    return f"{task['id']}.{task['version']}"


def if_match_condition(task_id: int) -> ColumnElement[bool]:
    """The WHERE condition that the request's If-Match header asks for.

    No header, or ``*``: any version. Otherwise only the versions named by
    strong ETags of this task; weak or foreign tags never match (RFC 9110
    uses strong comparison for If-Match).
    """
    if not has_if_match():
        return true()
    versions = []
    for tag in request.if_match.as_set():  # strong tags only
        tag_id, _, version = (tag or "").partition(".")  # werkzeug gives None for ""
        if tag_id == str(task_id) and version.isdigit():
            versions.append(int(version))
    return Task.version.in_(versions)


def has_if_match() -> bool:
    return "If-Match" in request.headers and not request.if_match.star_tag
