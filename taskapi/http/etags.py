"""Strong ETags for tasks, and what the request's If-Match asks for (docs/api.md, "ETags").

A task's ETag is ``"<id>.<version>"``; the version goes up by one on every
write, in the same UPDATE that makes the write, so checking and writing are
one atomic statement (``taskapi.data.task_store``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask import abort, request

# What a version looks like: ASCII digits that fit the 32-bit column. Anything
# else ("²" passes str.isdigit(), 5,000 digits fail int()) names no version.
VERSION = re.compile(r"[0-9]{1,10}")
VERSION_MAX = 2**31 - 1


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
        if tag_id == str(task_id) and VERSION.fullmatch(version) and int(version) <= VERSION_MAX:
            versions.append(int(version))
    return versions


def check_if_match(task: Mapping) -> None:
    """412 (a problem) when the request's If-Match does not name the task's current ETag."""
    versions = if_match_versions(task["id"])
    if versions is not None and task["version"] not in versions:
        abort_stale()


def if_none_match_names(task: Mapping) -> bool:
    """True when If-None-Match names the task's current ETag (weakly, as RFC 9110 compares
    for it) or is ``*``."""
    return "If-None-Match" in request.headers and request.if_none_match.contains_weak(etag_of(task))


def abort_stale():
    abort(412, "The task has changed since the ETag in If-Match; fetch it and retry.")


def has_if_match() -> bool:
    return "If-Match" in request.headers and not request.if_match.star_tag
