"""Better Auth JWT plugin tokens (EdDSA, verified against a JWKS served over HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

from harness.jwks_server import JWKSServer, SigningKey
from taskapi.http.request_log import JSONFormatter

from ..helpers import SECRET, assert_problem, make_token


@pytest.fixture
def jwks():
    server = JWKSServer()
    server.keys.append(SigningKey("key-1"))
    yield server
    server.stop()


@pytest.fixture
def jwks_app(app, database_url, jwks, make_app):
    """The migrated database, with an app that trusts the JWKS server."""
    return make_app(
        database_url,
        BETTER_AUTH_URL=jwks.url,
        JWT_JWKS_URL=f"{jwks.url}/api/auth/jwks",
        JWT_JWKS_TIMEOUT=1,
        JWT_JWKS_REFRESH_COOLDOWN=0.2,
    )


def better_auth_claims(jwks, user_id="ba-user", **overrides):
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iss": jwks.url,
        "aud": jwks.url,
        "iat": now,
        "exp": now + 900,
        "email": "ba@example.com",
        "name": "Better Auth User",
    }
    return {key: value for key, value in (claims | overrides).items() if value is not None}


def get_tasks(app, token, user_id="ba-user"):
    return app.test_client().get(
        f"/api/{user_id}/tasks", headers={"Authorization": f"Bearer {token}"}
    )


def test_better_auth_token_works(jwks_app, jwks):
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    response = get_tasks(jwks_app, token)
    assert response.status_code == 200
    created = jwks_app.test_client().post(
        "/api/ba-user/tasks",
        json={"title": "from the frontend"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201


def test_shared_secret_tokens_keep_working_alongside(jwks_app):
    assert get_tasks(jwks_app, make_token("alice"), "alice").status_code == 200


def test_keys_are_cached(jwks_app, jwks):
    for _ in range(5):
        assert get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks))).status_code == 200
    assert jwks.fetches == 1


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://evil.example.com"},
        {"aud": None},
        {"iss": "https://evil.example.com"},
        {"iss": None},
        {"exp": int(time.time()) - 60},
        {"exp": None},
        {"sub": None},
        {"nbf": int(time.time()) + 600},
    ],
    ids=["wrong aud", "no aud", "wrong iss", "no iss", "expired", "no exp", "no sub", "nbf"],
)
def test_bad_claims_are_401(jwks_app, jwks, claims):
    token = jwks.keys[0].sign(better_auth_claims(jwks, **claims))
    response = get_tasks(jwks_app, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_audience_list_containing_ours_is_accepted(jwks_app, jwks):
    token = jwks.keys[0].sign(better_auth_claims(jwks, aud=["other", jwks.url]))
    assert get_tasks(jwks_app, token).status_code == 200


def test_unknown_kid_is_401_and_refetches_at_most_once(jwks_app, jwks):
    stranger = SigningKey("not-published")
    for _ in range(5):
        assert get_tasks(jwks_app, stranger.sign(better_auth_claims(jwks))).status_code == 401
    assert jwks.fetches <= 2  # the first fetch, and one refresh (cooldown holds the rest)


def test_rotated_key_is_fetched(jwks_app, jwks):
    assert get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks))).status_code == 200
    old = jwks.keys[0]
    jwks.keys[:] = [SigningKey("key-2")]
    time.sleep(0.3)  # past the refresh cooldown
    assert get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks))).status_code == 200
    assert jwks.fetches == 2
    # The retired key is gone from the published set after the refresh.
    assert get_tasks(jwks_app, old.sign(better_auth_claims(jwks))).status_code == 401


def test_token_without_kid_is_401(jwks_app, jwks):
    key = jwks.keys[0]
    token = pyjwt.encode(better_auth_claims(jwks), key.private_key, algorithm="EdDSA")
    assert get_tasks(jwks_app, token).status_code == 401


def test_key_signed_under_another_kid_is_401(jwks_app, jwks):
    jwks.keys.append(SigningKey("key-2"))
    forged = jwks.keys[1].sign(better_auth_claims(jwks), kid="key-1")
    assert get_tasks(jwks_app, forged).status_code == 401


@pytest.mark.parametrize("encoding", ["pem", "raw", "jwk-x"])
def test_public_key_as_hmac_secret_is_401(jwks_app, jwks, encoding):
    """Algorithm confusion: HS256 'signed' with the published public key."""
    public_key = jwks.keys[0].private_key.public_key()
    secrets = {
        "pem": public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "raw": public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        "jwk-x": jwks.keys[0].jwk()["x"].encode(),
    }
    forged = hs256_by_hand(better_auth_claims(jwks), secrets[encoding], kid="key-1")
    assert get_tasks(jwks_app, forged).status_code == 401


def hs256_by_hand(claims: dict, secret: bytes, **header) -> str:
    """PyJWT refuses a public key as an HMAC secret, so an attacker's token is made by hand."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = ".".join(
        b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "typ": "JWT"} | header, claims)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_asymmetric_token_without_jwks_configured_is_401(client, jwks):
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    response = client.get("/api/ba-user/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def assert_keys_unavailable(response):
    """Contract 6: a token whose key cannot be fetched is 503 with Retry-After, not 401."""
    assert_problem(response, 503)
    assert 1 <= int(response.headers["Retry-After"]) <= 30


def test_jwks_down_is_503_with_a_log_line(jwks_app, jwks, log_records):
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    jwks.stop()
    assert_keys_unavailable(get_tasks(jwks_app, token))
    warnings = [r for r in log_records if r.levelno == logging.WARNING]
    assert any("JWKS unreachable" in record.getMessage() for record in warnings)
    # HS256 tokens do not depend on the JWKS.
    assert get_tasks(jwks_app, make_token("alice"), "alice").status_code == 200


def test_jwks_that_hangs_is_503_within_the_timeout(jwks_app, jwks):
    jwks.delay = 5
    started = time.monotonic()
    response = get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks)))
    assert_keys_unavailable(response)
    assert time.monotonic() - started < 3


def test_jwks_that_trickles_its_answer_is_503_within_the_timeout(jwks_app, jwks):
    jwks.trickle = 0.2  # a byte every 0.2 s: each read is quick, the whole is not
    started = time.monotonic()
    response = get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks)))
    assert_keys_unavailable(response)
    assert time.monotonic() - started < 2.5  # JWT_JWKS_TIMEOUT is 1 s


def test_a_stale_key_set_is_refreshed_without_keeping_the_request_waiting(jwks_app, jwks):
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    assert get_tasks(jwks_app, token).status_code == 200
    assert jwks.fetches == 1
    with jwks_app.app_context():
        jwks_app.extensions["taskapi.jwks"]._expires_at = 0  # the 10 minutes have passed
    jwks.delay = 0.5  # the refresh takes a while
    started = time.monotonic()
    assert get_tasks(jwks_app, token).status_code == 200
    assert time.monotonic() - started < 0.4  # answered from the cached key
    deadline = time.monotonic() + 5
    while jwks.fetches < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jwks.fetches == 2  # and the set was fetched again behind it


def test_jwks_port_closed_is_503_at_once(app, database_url, jwks, make_app):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = make_app(
        database_url,
        BETTER_AUTH_URL=f"http://127.0.0.1:{port}",
        JWT_JWKS_URL=f"http://127.0.0.1:{port}/api/auth/jwks",
    )
    started = time.monotonic()
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    assert_keys_unavailable(get_tasks(closed, token))
    assert time.monotonic() - started < 3


def test_secret_is_not_a_valid_jwks_key(jwks_app, jwks):
    """An EdDSA-labelled token cannot be verified with the shared secret."""
    token = hs256_by_hand(better_auth_claims(jwks), SECRET.encode(), alg="EdDSA", kid="key-1")
    assert get_tasks(jwks_app, token).status_code == 401


# Contract 6: Better Auth's algorithms, rotation within about a second, and a
# broken or hanging JWKS costing nobody more than one fetch per cooldown.


@pytest.fixture
def default_jwks_app(app, database_url, jwks, make_app):
    """Like ``jwks_app``, with the default cooldowns (1 s after a refetch, 30 s after a failure)."""
    return make_app(database_url, BETTER_AUTH_URL=jwks.url, JWT_JWKS_URL=jwks.jwks_url)


@pytest.mark.parametrize("publish_alg", [False, True], ids=["jwk without alg", "jwk with alg"])
@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256", "ES512", "PS256", "RS256"])
def test_every_better_auth_algorithm_is_accepted(jwks_app, jwks, algorithm, publish_alg):
    key = SigningKey(f"{algorithm}-key", algorithm, publish_alg=publish_alg)
    jwks.keys.append(key)
    assert get_tasks(jwks_app, key.sign(better_auth_claims(jwks))).status_code == 200


def test_a_key_of_another_type_is_401(jwks_app, jwks):
    # An ES256 token naming the published Ed25519 key's kid.
    impostor = SigningKey("key-1", "ES256")
    assert get_tasks(jwks_app, impostor.sign(better_auth_claims(jwks))).status_code == 401


def test_the_algorithm_a_jwk_names_is_the_only_one_it_verifies(jwks_app, jwks):
    key = SigningKey("rsa", "RS256", publish_alg=True)
    jwks.keys.append(key)
    token = pyjwt.encode(
        better_auth_claims(jwks), key.private_key, algorithm="PS256", headers={"kid": "rsa"}
    )
    assert get_tasks(jwks_app, token).status_code == 401
    assert get_tasks(jwks_app, key.sign(better_auth_claims(jwks))).status_code == 200


def test_a_rotated_key_works_within_a_second(default_jwks_app, jwks):
    assert (
        get_tasks(default_jwks_app, jwks.keys[0].sign(better_auth_claims(jwks))).status_code == 200
    )
    jwks.keys.append(SigningKey("key-2"))  # Better Auth signs with a new key at once
    time.sleep(1.05)
    token = jwks.keys[1].sign(better_auth_claims(jwks))
    assert get_tasks(default_jwks_app, token).status_code == 200
    assert jwks.fetches == 2


def test_unknown_kids_refetch_at_most_once_a_second(default_jwks_app, jwks):
    started = time.monotonic()
    for n in range(20):
        stranger = SigningKey(f"stranger-{n}")
        response = get_tasks(default_jwks_app, stranger.sign(better_auth_claims(jwks)))
        assert response.status_code == 401
    elapsed = time.monotonic() - started
    assert jwks.fetches <= 1 + int(elapsed)  # the first fetch, then one per second at most


def test_a_jwks_answering_html_is_503_not_500(jwks_app, jwks):
    jwks.html = True
    assert_keys_unavailable(get_tasks(jwks_app, jwks.keys[0].sign(better_auth_claims(jwks))))


def test_after_a_failed_fetch_none_is_tried_for_the_cooldown(default_jwks_app, jwks):
    jwks.html = True
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    for _ in range(5):
        assert_keys_unavailable(get_tasks(default_jwks_app, token))
    jwks.html = False  # fixed, but the app does not ask again before the cooldown ends
    assert_keys_unavailable(get_tasks(default_jwks_app, token))
    assert jwks.fetches == 1
    # Shared-secret tokens never depended on the JWKS.
    assert get_tasks(default_jwks_app, make_token("alice"), "alice").status_code == 200


def test_fetching_resumes_after_the_failure_cooldown(app, database_url, jwks, make_app):
    short = make_app(
        database_url,
        BETTER_AUTH_URL=jwks.url,
        JWT_JWKS_URL=jwks.jwks_url,
        JWT_JWKS_FAILURE_COOLDOWN=0.3,
    )
    token = jwks.keys[0].sign(better_auth_claims(jwks))
    jwks.html = True
    assert_keys_unavailable(get_tasks(short, token))
    jwks.html = False
    time.sleep(0.35)
    assert get_tasks(short, token).status_code == 200
    assert jwks.fetches == 2


def test_cached_kids_keep_working_while_the_jwks_is_down(default_jwks_app, jwks):
    known = jwks.keys[0]
    assert get_tasks(default_jwks_app, known.sign(better_auth_claims(jwks))).status_code == 200
    jwks.stop()
    time.sleep(1.05)  # past the refresh cooldown: an unknown kid tries, and fails
    stranger = SigningKey("rotated-in-while-down")
    assert_keys_unavailable(get_tasks(default_jwks_app, stranger.sign(better_auth_claims(jwks))))
    assert get_tasks(default_jwks_app, known.sign(better_auth_claims(jwks))).status_code == 200


@pytest.mark.parametrize(
    ("make_token_for", "reason"),
    [
        (lambda jwks: SigningKey("key-1").sign(better_auth_claims(jwks)), "Signature"),
        (lambda jwks: jwks.keys[0].sign(better_auth_claims(jwks, exp=1)), "exp"),
        (lambda jwks: jwks.keys[0].sign(better_auth_claims(jwks, iss="https://x.example")), "iss"),
        (lambda jwks: jwks.keys[0].sign(better_auth_claims(jwks, aud="https://x.example")), "aud"),
        (lambda jwks: SigningKey("unknown").sign(better_auth_claims(jwks)), "kid"),
    ],
    ids=["signature", "exp", "iss", "aud", "unknown kid"],
)
def test_why_a_token_was_refused_is_logged_at_debug(
    jwks_app, jwks, debug_log_records, make_token_for, reason
):
    token = make_token_for(jwks)
    response = get_tasks(jwks_app, token)
    assert response.status_code == 401
    # The client gets a generic answer; the log says which check failed.
    assert response.json["detail"] in (
        "The access token is invalid.",
        "The access token has expired.",
    )
    (line,) = [r.getMessage() for r in debug_log_records if "token rejected" in r.getMessage()]
    assert reason in line
    for record in debug_log_records:
        assert token.split(".")[2] not in JSONFormatter().format(record)
