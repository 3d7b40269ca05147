"""No cookie sessions: the API authenticates every request by its bearer token.

Flask would otherwise look for a session cookie on every request and decide
after each whether to write one back; here the session is always the same
empty, read-only one, and nothing is read or written.
"""

from __future__ import annotations

from flask.sessions import NullSession, SessionInterface

NO_SESSION = NullSession()


class NoSessions(SessionInterface):
    def open_session(self, app, request) -> NullSession:
        return NO_SESSION

    def save_session(self, app, session, response) -> None:
        return None  # never called: Flask skips saving a null session
