"""Configuration read from the environment, with a fail-fast check for production.

Every setting is parsed here (``load_config``), every setting that follows
from others is computed here (``derived_settings``), and nowhere else; the
rest of the package reads ``current_app.config``. docs/operations.md lists
them all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

ENVIRONMENTS = ("development", "production", "testing")
MIN_SECRET_LENGTH = 32
# Tokens signed with the shared secret (BETTER_AUTH_SECRET, or this app's own).
SHARED_SECRET_ALGORITHMS = ("HS256",)
# Better Auth's jwt() plugin signs with one of these; verified with its JWKS.
JWKS_ALGORITHMS = ("EdDSA", "ES256", "RS256")


class ConfigError(RuntimeError):
    """The configuration is unusable; the app refuses to start."""


def load_config(environ: Mapping[str, str], instance_path: str) -> dict:
    """Return the Flask config mapping for ``environ``."""
    env = environ.get("APP_ENV", "development").strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")

    database_url = environ.get("DATABASE_URL", "").strip() or default_sqlite_url(instance_path)
    secret = environ.get("BETTER_AUTH_SECRET", "").strip()
    if not secret and env == "development":
        secret = development_secret(instance_path)

    better_auth_url = environ.get("BETTER_AUTH_URL", "").strip().rstrip("/") or None
    jwks_url = environ.get("JWT_JWKS_URL", "").strip() or (
        f"{better_auth_url}/api/auth/jwks" if better_auth_url else None
    )
    default_origins = "http://localhost:3000" if env == "development" else ""

    return {
        "APP_ENV": env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JWT_SECRET_KEY": secret,
        "JWT_IDENTITY_CLAIM": environ.get("JWT_IDENTITY_CLAIM", "sub").strip() or "sub",
        "JWT_ACCESS_TOKEN_EXPIRES": parse_int(environ, "JWT_ACCESS_TOKEN_EXPIRES", 3600, minimum=1),
        "JWT_ISSUER": environ.get("JWT_ISSUER", "").strip() or None,
        "JWT_AUDIENCE": environ.get("JWT_AUDIENCE", "").strip() or None,
        "MAX_CONTENT_LENGTH": parse_int(environ, "MAX_CONTENT_LENGTH", 1024 * 1024, minimum=1),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        "TRUSTED_PROXIES": parse_int(environ, "TRUSTED_PROXIES", 0, minimum=0),
        "BETTER_AUTH_URL": better_auth_url,
        "JWT_JWKS_URL": jwks_url,
        "JWT_JWKS_TIMEOUT": parse_int(environ, "JWT_JWKS_TIMEOUT", 3, minimum=1),
        # Unknown kids refetch the JWKS at most once per this many seconds (per process).
        "JWT_JWKS_REFRESH_COOLDOWN": parse_int(environ, "JWT_JWKS_REFRESH_COOLDOWN", 10, minimum=0),
        "CORS_ORIGINS": parse_list(environ.get("CORS_ORIGINS", default_origins)),
        # RATELIMIT_DEFAULT would be Flask-Limiter's limit for every route, so the
        # contract's variables are read into names of our own.
        "TASKS_RATE_LIMIT": environ.get("RATELIMIT_DEFAULT", "").strip() or "600 per minute",
        "AUTH_RATE_LIMIT": environ.get("RATELIMIT_AUTH", "").strip() or "10 per minute",
        "RATELIMIT_ENABLED": parse_bool(environ, "RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": environ.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://",
        # Flask-Limiter's own: X-RateLimit-* headers; if Redis is unreachable,
        # count in memory rather than fail requests.
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "taskapi",
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    }


def derived_settings(config: Mapping) -> dict:
    """Settings that follow from others: the extensions' own keys.

    Computed after tests' overrides too, so an override of ``JWT_JWKS_URL``
    (say) brings its consequences with it.
    """
    jwks_algorithms = JWKS_ALGORITHMS if config.get("JWT_JWKS_URL") else ()
    return {
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(config["SQLALCHEMY_DATABASE_URI"]),
        # flask-jwt-extended: tokens in the Authorization header only; the key for
        # each algorithm is chosen by taskapi.keys (no algorithm confusion).
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ALGORITHM": SHARED_SECRET_ALGORITHMS[0],
        "JWT_DECODE_ALGORITHMS": [*SHARED_SECRET_ALGORITHMS, *jwks_algorithms],
        # Issuer and audience are checked per kind of token (taskapi.keys); the
        # tokens this app issues carry them when they are configured.
        "JWT_ENCODE_ISSUER": config.get("JWT_ISSUER"),
        "JWT_ENCODE_AUDIENCE": config.get("JWT_AUDIENCE"),
    }


def check_config(config: Mapping) -> None:
    """Refuse to run with settings that are unsafe or unusable."""
    secret = config.get("JWT_SECRET_KEY") or ""
    if config.get("APP_ENV") == "production" and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"BETTER_AUTH_SECRET must be set to at least {MIN_SECRET_LENGTH} characters "
            "in production (generate one with: openssl rand -base64 32)."
        )
    if not secret:
        raise ConfigError("BETTER_AUTH_SECRET is not set.")


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://`` (Heroku, Neon) and driverless URLs; the driver is psycopg2.

    SQLAlchemy rejects ``postgres://`` and, since 2.1, maps ``postgresql://`` to psycopg 3.
    """
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url.removeprefix(scheme)
    return url


def default_sqlite_url(instance_path: str) -> str:
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'taskapi.sqlite3'}"


def development_secret(instance_path: str) -> str:
    """A random secret kept in the instance folder, so tokens survive restarts."""
    path = Path(instance_path) / "dev-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def parse_list(raw: str) -> list[str]:
    return [item.strip().rstrip("/") for item in raw.split(",") if item.strip()]


def parse_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def parse_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}.")
    return value
