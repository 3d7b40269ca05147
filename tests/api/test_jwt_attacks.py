"""Hostile tokens, table-driven: every one is a 401 on every protected endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt as pyjwt
import pytest

from taskapi.http.request_log import JSONFormatter

from ..helpers import SECRET, TASKS, USER_ENDPOINTS, assert_problem, make_token

NOW = int(time.time())
GOOD_CLAIMS = {"sub": "alice", "iat": NOW, "exp": NOW + 3600}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, key: bytes | None = SECRET.encode()) -> str:
    """A token assembled by hand, as an attacker would: any header, any claims."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def swap_payload(token: str, claims: dict) -> str:
    header, _payload, signature = token.split(".")
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def swap_header(token: str, header: dict) -> str:
    _header, payload, signature = token.split(".")
    return f"{b64(json.dumps(header).encode())}.{payload}.{signature}"


HS256 = {"alg": "HS256", "typ": "JWT"}
GOOD = make_token("alice")

# Authorization header values that are not "Bearer <token>" and nothing else
# (docs/api.md, Basics), several of them around a valid token: each would otherwise
# be another entry in the verified-token cache.
MALFORMED_HEADERS = {
    "scheme only": "Bearer",
    "scheme and a space": "Bearer ",
    "basic scheme": "Basic YWxpY2U6c2VjcmV0",
    "two words after the scheme": "Bearer a b",
    "garbage": "Bearer not-a-jwt",
    "three garbage parts": "Bearer a.b.c",
    "valid token, comma, junk": f"Bearer {GOOD}, x=junk",
    "valid token, trailing word": f"Bearer {GOOD} junk",
    "valid token twice": f"Bearer {GOOD} {GOOD}",
    "two schemes": f"Bearer Bearer {GOOD}",
    "two spaces": f"Bearer  {GOOD}",
    "tab": f"Bearer\t{GOOD}",
    "no space": f"Bearer{GOOD}",
    "colon": f"Bearer: {GOOD}",
    "leading space": f" Bearer {GOOD}",
    "trailing space": f"Bearer {GOOD} ",
    "trailing comma": f"Bearer {GOOD},",
    "quoted token": f'Bearer "{GOOD}"',
    "token in a parameter": f"Bearer token={GOOD}",
    "another scheme first": f"Basic YWxpY2U6c2VjcmV0, Bearer {GOOD}",
    "latin-1 byte": f"Bearer {GOOD}\xe9",
}

# Tokens sent as "Bearer <token>".
ATTACKS = {
    # The algorithm
    "alg none": forge({"alg": "none", "typ": "JWT"}, GOOD_CLAIMS, key=None),
    "alg None": forge({"alg": "None"}, GOOD_CLAIMS, key=None),
    "alg none with signature": forge({"alg": "none"}, GOOD_CLAIMS),
    "alg HS512": pyjwt.encode(GOOD_CLAIMS, SECRET + "x" * 10, algorithm="HS512"),
    "alg RS256 signed with secret": forge({"alg": "RS256"}, GOOD_CLAIMS),
    "alg EdDSA signed with secret": forge({"alg": "EdDSA", "kid": "k"}, GOOD_CLAIMS),
    "alg missing": forge({"typ": "JWT"}, GOOD_CLAIMS),
    "alg not a string": forge({"alg": ["HS256"]}, GOOD_CLAIMS),
    # Signature and tampering
    "wrong secret": make_token("alice", secret="not-the-secret-" + "q" * 60),
    "empty secret": forge(HS256, GOOD_CLAIMS, key=b""),
    "tampered payload (sub)": swap_payload(GOOD, GOOD_CLAIMS | {"sub": "bob"}),
    "tampered payload (exp)": swap_payload(
        make_token("alice", exp=NOW - 10), GOOD_CLAIMS | {"exp": NOW + 10**6}
    ),
    "tampered header (alg)": swap_header(GOOD, {"alg": "HS384", "typ": "JWT"}),
    "tampered header (kid, jku)": swap_header(
        GOOD, HS256 | {"kid": "../../etc/passwd", "jku": "http://127.0.0.1:1/jwks"}
    ),
    "signature stripped": GOOD.rsplit(".", 1)[0] + ".",
    "signature truncated": GOOD[:-4],
    "extra segment": GOOD + ".AAAA",
    "two segments": ".".join(GOOD.split(".")[:2]),
    # Time
    "expired": make_token("alice", exp=NOW - 1),
    "expired long ago": make_token("alice", exp=1),
    "not yet valid (nbf)": make_token("alice", nbf=NOW + 600),
    "issued in the future (iat)": make_token("alice", iat=NOW + 3600),
    # Missing claims and wrong types
    "no sub": make_token(None),
    "no exp": make_token("alice", exp=None),
    "sub number": forge(HS256, GOOD_CLAIMS | {"sub": 42}),
    "sub list": forge(HS256, GOOD_CLAIMS | {"sub": ["alice"]}),
    "sub object": forge(HS256, GOOD_CLAIMS | {"sub": {"id": "alice"}}),
    "sub null": forge(HS256, GOOD_CLAIMS | {"sub": None}),
    "sub empty": forge(HS256, GOOD_CLAIMS | {"sub": ""}),
    "sub with NUL": forge(HS256, GOOD_CLAIMS | {"sub": "alice\u0000"}),
    "exp string": forge(HS256, GOOD_CLAIMS | {"exp": str(NOW + 3600)}),
    "exp null": forge(HS256, GOOD_CLAIMS | {"exp": None}),
    "exp Infinity": forge(HS256, GOOD_CLAIMS | {"exp": float("inf")}),
    "exp NaN": forge(HS256, GOOD_CLAIMS | {"exp": float("nan")}),
    "exp boolean": forge(HS256, GOOD_CLAIMS | {"exp": True}),
    "nbf Infinity": forge(HS256, GOOD_CLAIMS | {"nbf": float("inf")}),
    "iat -Infinity": forge(HS256, GOOD_CLAIMS | {"iat": float("-inf")}),
    "nbf string": forge(HS256, GOOD_CLAIMS | {"nbf": "now"}),
    "iat string": forge(HS256, GOOD_CLAIMS | {"iat": "now"}),
    "payload not an object": forge(HS256, ["sub", "alice"]),
    "payload not JSON": f"{b64(json.dumps(HS256).encode())}.{b64(b'not json')}.sig",
    "header not JSON": f"{b64(b'{')}.{b64(json.dumps(GOOD_CLAIMS).encode())}.sig",
    "bad base64": "e30.!!!!.e30",
    # Size and shape
    "huge token": make_token("alice", padding="x" * 7000),
    "huge garbage": "A" * 8000,
    "unicode": "ünï.cödé.tökën",
    "refresh token type": make_token("alice", type="refresh"),
    # Lone surrogates (JSON can spell them; UTF-8 cannot carry them)
    "sub lone surrogate": forge(HS256, GOOD_CLAIMS | {"sub": "alice\ud800"}),
    "alg lone surrogate": forge({"alg": "HS256\ud800"}, GOOD_CLAIMS),
    "kid lone surrogate": forge({"alg": "EdDSA", "kid": "\ud800"}, GOOD_CLAIMS),
}
REJECTED = MALFORMED_HEADERS | {name: f"Bearer {token}" for name, token in ATTACKS.items()}


@pytest.mark.parametrize("authorization", REJECTED.values(), ids=REJECTED)
def test_hostile_token_is_401_everywhere(client, create_task, authorization):
    task = create_task("alice", tags=["work"])
    token = authorization.split()[-1]
    for method, path, body in USER_ENDPOINTS:
        url = path.format(user="alice", task=task["id"])
        response = getattr(client, method)(url, json=body, headers={"Authorization": authorization})
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if len(token) > 8:  # never echoed back
            assert token not in response.get_data(as_text=True)
    # And nothing changed.
    assert (
        client.get(f"{TASKS}/{task['id']}", headers={"Authorization": f"Bearer {GOOD}"}).json
        == task
    )


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_control_token_is_accepted_with_the_scheme_in_any_case(client, scheme):
    response = client.get(TASKS, headers={"Authorization": f"{scheme} {GOOD}"})
    assert response.status_code == 200


def test_junk_around_a_valid_token_does_not_grow_the_cache(app, client):
    cache = app.extensions["taskapi.verified_tokens"]
    cache.clear()
    assert client.get(TASKS, headers={"Authorization": f"Bearer {GOOD}"}).status_code == 200
    for n in range(50):
        headers = {"Authorization": f"Bearer {GOOD}, x={n}"}
        assert client.get(TASKS, headers=headers).status_code == 401
    assert len(cache) == 1


@pytest.mark.parametrize("authorization", REJECTED.values(), ids=REJECTED)
def test_why_a_token_was_refused_is_logged_at_debug_never_the_token(
    client, debug_log_records, authorization
):
    response = client.get(TASKS, headers={"Authorization": authorization})
    assert response.status_code == 401
    text = "\n".join(JSONFormatter().format(record) for record in debug_log_records)
    if authorization.lower().startswith("bearer"):
        assert "access token rejected: " in text
    token = authorization.split()[-1] if " " in authorization.strip() else authorization
    if len(token) > 8:
        assert token not in text
        assert token.split(".")[-1] not in text or len(token.split(".")[-1]) <= 8
