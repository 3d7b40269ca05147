"""The Flask class taskapi runs on: Flask fitted to a JSON API with bearer tokens.

Bodies are encoded by orjson (taskapi.http.json_bodies) and there are no cookie
sessions (taskapi.http.sessions): a request neither reads nor writes one.
"""

from __future__ import annotations

from flask import Flask

from .json_bodies import OrjsonProvider
from .sessions import NoSessions


class TaskAPI(Flask):
    json_provider_class = OrjsonProvider
    session_interface = NoSessions()
