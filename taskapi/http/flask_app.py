"""The Flask class taskapi runs on: Flask fitted to a JSON API with bearer tokens.

Bodies are encoded by orjson (taskapi.http.json_bodies) and there are no cookie
sessions (taskapi.http.sessions): a request neither reads nor writes one.
Whether a view or hook is a coroutine function is looked up once per function.
"""

from __future__ import annotations

from functools import cached_property

from flask import Flask

from .json_bodies import OrjsonProvider
from .sessions import NoSessions


class TaskAPI(Flask):
    json_provider_class = OrjsonProvider
    session_interface = NoSessions()

    def ensure_sync(self, func):
        """Flask's, remembered per function: Flask asks it of every hook and view
        on every request, and each answer takes a look at the function's code."""
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = self._sync_functions[func] = super().ensure_sync(func)
            return sync

    @cached_property
    def _sync_functions(self) -> dict:
        return {}
