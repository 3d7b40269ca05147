"""The MCP endpoint's access tokens: Better Auth's ``at+jwt`` tokens for this resource.

A token is accepted only when all of these hold (docs/api.md, "Agents (MCP)"):
its header says ``typ: at+jwt`` and an algorithm of the JWKS (never HS256:
the shared-secret tokens of the REST API are refused, as is any token for
another audience: no token passthrough); its signature verifies with the
key its ``kid`` names in the same JWKS the REST API uses
(``taskapi.auth.jwks.JWKS``, with its rotation and outage rules); ``iss`` is
``MCP_AUTHORIZATION_SERVER``; ``aud`` is or contains ``MCP_RESOURCE_URL``;
``exp`` is in the future (``nbf``, when present, past); ``sub`` is a user
id, and not the OAuth client itself (a client-credentials token names its
client in ``sub``, ``azp`` and ``client_id``). Why a token was refused goes
to the log at DEBUG, never the token.
"""

from __future__ import annotations

import logging

import anyio.to_thread
import jwt
from flask import Flask
from jwt import PyJWTError
from mcp.server.auth.provider import AccessToken, TokenVerifier

from ..auth.jwks import JWKS
from ..auth.tokens import AUTHORIZATION_MAX_LENGTH, is_number, is_valid_user_id
from ..config import JWKS_ALGORITHMS

# RFC 9068 section 2.1: "at+jwt"; "application/at+jwt" is the same media type.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
READ_SCOPE, WRITE_SCOPE = "tasks:read", "tasks:write"
SCOPES = (READ_SCOPE, WRITE_SCOPE)

log = logging.getLogger("taskapi.auth")


class TokenRefused(Exception):
    """The token fails one of the rules; the message says which (for the log)."""


class AgentTokenVerifier(TokenVerifier):
    """Verifies the bearer tokens of MCP requests for one app's configuration."""

    def __init__(self, app: Flask):
        self.jwks: JWKS | None = app.extensions["taskapi.jwks"]
        self.resource: str = app.config["MCP_RESOURCE_URL"]
        self.issuer: str = app.config["MCP_AUTHORIZATION_SERVER"]

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's access, or None (the SDK answers 401).

        Runs in a worker thread: an unknown ``kid`` may fetch the JWKS. Raises
        ``KeysUnavailable`` while the JWKS cannot be fetched (answered 503).
        """
        return await anyio.to_thread.run_sync(self.verify, token)

    def verify(self, token: str) -> AccessToken | None:
        try:
            return self.access(token)
        except TokenRefused as refusal:
            log.debug("MCP access token rejected: %s", refusal)
        except PyJWTError as error:
            log.debug("MCP access token rejected: %s: %s", type(error).__name__, error)
        return None

    def access(self, token: str) -> AccessToken:
        """The access ``token`` grants; TokenRefused or PyJWTError when it grants none."""
        token = token.lstrip(" ")  # "Bearer" and the token may be apart by several spaces
        if len(token) > AUTHORIZATION_MAX_LENGTH:
            raise TokenRefused("the token is over 4 KB")
        header = jwt.get_unverified_header(token)
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise TokenRefused("typ: not at+jwt (an ID or session token, or a REST API token)")
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in JWKS_ALGORITHMS or self.jwks is None:
            raise TokenRefused("alg: not an algorithm of the JWKS")
        if not isinstance(kid, str):
            raise TokenRefused("kid: missing")
        claims = jwt.decode(
            token,
            self.jwks.key(kid, algorithm),  # KeysUnavailable goes up: 503
            algorithms=[algorithm],
            audience=self.resource,
            issuer=self.issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        reason = claims_problem(claims)
        if reason:
            raise TokenRefused(reason)
        scope = claims.get("scope", "")
        return AccessToken(
            token=token,
            client_id=client_of(claims) or "",
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(claims["exp"]),
            resource=self.resource,
            subject=claims["sub"],
            claims={name: claims[name] for name in ("iss", "email", "name") if name in claims},
        )


def claims_problem(claims: dict) -> str | None:
    """What the rules ask of the claims beyond PyJWT's checks, or None."""
    # PyJWT also takes numeric strings in time claims; RFC 7519 does not.
    for claim in ("exp", "nbf", "iat"):
        if claim in claims and not is_number(claims[claim]):
            return f"{claim}: not a number"
    if not is_valid_user_id(claims["sub"]):
        return "sub: not a usable user id"
    if claims["sub"] in (claims.get("client_id"), claims.get("azp")):
        return "sub: the OAuth client itself, not a user (client credentials)"
    if "scope" in claims and not isinstance(claims["scope"], str):
        return "scope: not a space-separated string"
    return None


def client_of(claims: dict) -> str | None:
    """The OAuth client the token was issued to: ``client_id`` (RFC 9068), or ``azp``."""
    for claim in ("client_id", "azp"):
        if isinstance(claims.get(claim), str):
            return claims[claim]
    return None
