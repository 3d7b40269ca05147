"""The command line: minting tokens for curl (the purge commands are tested with what they
purge, in test_trash.py and test_idempotency.py)."""

from __future__ import annotations

import jwt as pyjwt

from ..helpers import SECRET


def test_token_command_mints_a_working_token(runner, client):
    result = runner.invoke(args=["token", "cli-user", "--email", "cli@example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["email"]) == ("cli-user", "cli@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/cli-user/tasks", json={"title": "from curl"}, headers=headers)
    assert response.status_code == 201


def test_token_command_lifetime(runner):
    token = runner.invoke(args=["token", "u", "--expires-in", "60"]).output.strip()
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60


def test_token_command_refuses_unusable_user_id(runner):
    result = runner.invoke(args=["token", "has space"])
    assert result.exit_code == 2
    assert "USER_ID" in result.output
