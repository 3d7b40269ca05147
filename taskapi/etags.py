"""Strong ETags for tasks, and what the request's If-Match asks for (contract 4.3).

A task's ETag is ``"<id>.<version>"``; the version goes up by one on every
write, in the same UPDATE that makes the write, so checking and writing are
one atomic statement (``taskapi.task_store``).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import request


def etag_of(task: Mapping) -> str:
    return f"{task['id']}.{task['version']}"


def if_match_versions(task_id: int) -> list[int] | None:
    """The versions of task ``task_id`` that the request's If-Match names.

    None when there is no precondition (no header, or ``*``). Otherwise only
    strong ETags of this task count; weak or foreign tags never match (RFC
    9110 uses strong comparison for If-Match), so the list may be empty.
    """
    if not has_if_match():
        return None
    versions = []
    for tag in request.if_match.as_set():  # strong tags only
        tag_id, _, version = (tag or "").partition(".")  # werkzeug gives None for ""
        if tag_id == str(task_id) and version.isdigit():
            versions.append(int(version))
    return versions


def has_if_match() -> bool:
    return "If-Match" in request.headers and not request.if_match.star_tag
