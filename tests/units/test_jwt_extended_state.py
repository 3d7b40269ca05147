"""The workaround in taskapi/auth/jwt_extended_state.py holds for the installed flask-jwt-extended.

When one of these fails after an upgrade, read the new version's
``verify_jwt_in_request`` and mend ``set_request_token`` (then its version).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from flask import g
from flask_jwt_extended import get_jwt, get_jwt_header, verify_jwt_in_request

from taskapi.auth.jwt_extended_state import WRITTEN_AGAINST, set_request_token
from taskapi.auth.tokens import authorize

from ..helpers import make_token

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def test_written_against_the_installed_and_pinned_version():
    assert version("Flask-JWT-Extended") == WRITTEN_AGAINST
    assert f"Flask-JWT-Extended=={WRITTEN_AGAINST}" in REQUIREMENTS.read_text().splitlines()


def test_it_leaves_what_verify_jwt_in_request_leaves(app):
    headers = {"Authorization": f"Bearer {make_token('alice', email='alice@example.com')}"}

    def jwt_extended_state() -> dict:
        return {name: value for name, value in vars(g).items() if "jwt_extended" in name}

    with app.test_request_context(headers=headers):
        verify_jwt_in_request()
        theirs = jwt_extended_state()
        header, claims = get_jwt_header(), get_jwt()
    with app.test_request_context(headers=headers):
        set_request_token(header, claims)
        ours = jwt_extended_state()
    assert ours == theirs


def test_the_view_sees_the_same_token_whether_or_not_it_was_remembered(database_url, make_app):
    app = make_app(database_url)

    @app.get("/api/<user_id>/whoami")
    def whoami(user_id):
        authorize(user_id)
        get_jwt()["sub"] = "mallory"  # a view that scribbles on its claims harms nobody
        return {"claims": get_jwt(), "header": get_jwt_header(), "user_id": user_id}

    client = app.test_client()
    token = make_token("alice", email="alice@example.com", name="Alice", role="admin")
    headers = {"Authorization": f"Bearer {token}"}
    first = client.get("/api/alice/whoami", headers=headers)  # verified
    app.config["JWT_SECRET_KEY"] = "another-secret-" + "z" * 40  # verifying now would fail
    second = client.get("/api/alice/whoami", headers=headers)  # so: remembered
    assert first.status_code == second.status_code == 200
    first, second = first.json, second.json
    assert first == second
    assert first["header"] == {"alg": "HS256"}
    assert set(first["claims"]) == {"sub", "exp", "email", "name"}  # only the used claims
    assert first["claims"]["email"] == "alice@example.com"
    assert first["user_id"] == "alice"
