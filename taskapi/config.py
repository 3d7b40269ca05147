"""Configuration read from the environment, with a fail-fast check for production.

Every setting is parsed here (``load_config``), every setting that follows
from others is computed here (``derived_settings``), and nowhere else; the
rest of the package reads ``current_app.config``. docs/operations.md lists
them all. gunicorn's master loads this module by itself to check the same
settings before it forks (gunicorn.conf.py): it imports nothing from taskapi.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv
from limits import parse_many

ENVIRONMENTS = ("development", "production", "testing")
# Read in development only; variables already set win.
DOTENV = Path(__file__).resolve().parent.parent / ".env"
# Set by gunicorn's master once it has logged the configuration's warnings: the
# workers it forks inherit it and do not log them again.
WARNINGS_LOGGED = "TASKAPI_CONFIGURATION_WARNINGS_LOGGED"
MIN_SECRET_LENGTH = 32
# Tokens signed with the shared secret (BETTER_AUTH_SECRET, or this app's own).
SHARED_SECRET_ALGORITHMS = ("HS256",)
# Better Auth's jwt() plugin signs with one of these; verified with its JWKS.
JWKS_ALGORITHMS = ("EdDSA", "ES256", "ES512", "PS256", "RS256")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# An origin as browsers send it: scheme, host and an optional port; no path, no pattern.
ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


class ConfigError(RuntimeError):
    """The configuration is unusable; the app refuses to start."""


def refusal(error: ConfigError, environ: Mapping[str, str]) -> str:
    """The one line a person reads when ``error`` stops a command or the server."""
    line = f"taskapi cannot start: {error}"
    if not environ.get("APP_ENV", "").strip():
        line += (
            " APP_ENV is not set, so it runs as production: to try it out, prefix the "
            "command with APP_ENV=development."
        )
    return line


def from_environment(instance_path: str) -> dict:
    """The settings from the environment (in development, ``.env`` first), with
    those that follow from them, checked: what create_app() runs with."""
    if app_environment(os.environ) == "development":
        load_dotenv(DOTENV)
    return completed(load_config(os.environ, instance_path))


def completed(config: Mapping) -> dict:
    """``config`` with the settings that follow from it; ConfigError if it cannot work."""
    config = {**config, **derived_settings(config)}
    check_config(config)
    return config


def app_environment(environ: Mapping[str, str]) -> str:
    """``APP_ENV``, in any letter case; production unless set (a forgotten
    variable must not turn a deployment into a development server)."""
    env = environ.get("APP_ENV", "").strip().lower() or "production"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}.")
    return env


def load_config(environ: Mapping[str, str], instance_path: str) -> dict:
    """Return the Flask config mapping for ``environ``."""
    env = app_environment(environ)

    database_url = environ.get("DATABASE_URL", "").strip() or default_sqlite_url(instance_path)
    secret = environ.get("BETTER_AUTH_SECRET", "").strip()
    if not secret and env == "development":
        secret = development_secret(instance_path)

    better_auth_url = environ.get("BETTER_AUTH_URL", "").strip().rstrip("/") or None
    jwks_url = environ.get("JWT_JWKS_URL", "").strip() or (
        f"{better_auth_url}/api/auth/jwks" if better_auth_url else None
    )
    if jwks_url and urlsplit(jwks_url).scheme not in ("http", "https"):
        raise ConfigError(f"JWT_JWKS_URL must be an http(s) URL, not {jwks_url!r}.")
    default_origins = "http://localhost:3000" if env == "development" else ""
    mcp_port = parse_int(environ, "MCP_PORT", 8001, minimum=1)
    warnings: list[str] = []  # what parsing let through but the operator should hear of

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
        "LOG_LEVEL": parse_choice(environ, "LOG_LEVEL", "INFO", LOG_LEVELS),
        "TRUSTED_PROXIES": parse_int(environ, "TRUSTED_PROXIES", 0, minimum=0),
        "PUBLIC_URL": parse_public_url(environ.get("PUBLIC_URL", "")),
        "BETTER_AUTH_URL": better_auth_url,
        "JWT_JWKS_URL": jwks_url,
        "JWT_JWKS_TIMEOUT": parse_seconds(environ, "JWT_JWKS_TIMEOUT", 3, minimum=0.1),
        # An unknown kid refetches the JWKS at most once per this many seconds (per process).
        "JWT_JWKS_REFRESH_COOLDOWN": parse_seconds(environ, "JWT_JWKS_REFRESH_COOLDOWN", 1),
        # After a failed fetch, none for this many seconds (unknown kids get 503).
        "JWT_JWKS_FAILURE_COOLDOWN": parse_seconds(environ, "JWT_JWKS_FAILURE_COOLDOWN", 30),
        # Longest a statement (lock waits included) may run; 0 turns the limit off.
        "DATABASE_STATEMENT_TIMEOUT": parse_seconds(environ, "DATABASE_STATEMENT_TIMEOUT", 5),
        # Days a task stays in the trash and a feed token stays valid (docs/api.md, "Trash").
        "TRASH_RETENTION_DAYS": parse_int(environ, "TRASH_RETENTION_DAYS", 30, minimum=1),
        # PostgreSQL connections each worker keeps (a gevent worker serves many
        # requests at once; beyond this many, a request waits for one to come free).
        "DATABASE_POOL_SIZE": parse_int(environ, "DATABASE_POOL_SIZE", 10, minimum=1),
        "CORS_ORIGINS": parse_origins(environ.get("CORS_ORIGINS", default_origins), warnings),
        # The documented names for the limits, read into names of our own (taskapi.limits).
        "TASKS_RATE_LIMIT": parse_limit(environ, "RATELIMIT_DEFAULT", "600 per minute"),
        "AUTH_RATE_LIMIT": parse_limit(environ, "RATELIMIT_AUTH", "10 per minute"),
        "RATELIMIT_ENABLED": parse_bool(environ, "RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": environ.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://",
        # The counters' keys start with it (several apps can share one Redis).
        "RATELIMIT_KEY_PREFIX": "taskapi",
        # gunicorn's workers (gunicorn.conf.py takes it from here), and the warning below.
        "WEB_CONCURRENCY": parse_int(environ, "WEB_CONCURRENCY", 2, minimum=1),
        # The MCP process (docs/mcp.md): its port, the public URL of its endpoint (the
        # audience its tokens must name), the issuer of those tokens, the Host allowlist.
        "MCP_PORT": mcp_port,
        "MCP_RESOURCE_URL": parse_resource_url(environ.get("MCP_RESOURCE_URL", ""))
        or (None if env == "production" else f"http://127.0.0.1:{mcp_port}/mcp"),
        "MCP_AUTHORIZATION_SERVER": parse_http_url(environ, "MCP_AUTHORIZATION_SERVER"),
        "MCP_ALLOWED_HOSTS": parse_hosts(environ.get("MCP_ALLOWED_HOSTS", "")),
        "CONFIG_WARNINGS": warnings,
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
        # each algorithm is chosen by taskapi.auth.jwks (no algorithm confusion).
        "JWT_TOKEN_LOCATION": ["headers"],
        "JWT_ALGORITHM": SHARED_SECRET_ALGORITHMS[0],
        "JWT_DECODE_ALGORITHMS": [*SHARED_SECRET_ALGORITHMS, *jwks_algorithms],
        # Issuer and audience are checked per kind of token (taskapi.auth.jwks); the
        # tokens this app issues carry them when they are configured.
        "JWT_ENCODE_ISSUER": config.get("JWT_ISSUER"),
        "JWT_ENCODE_AUDIENCE": config.get("JWT_AUDIENCE"),
        **mcp_derived_settings(config),
    }


def mcp_derived_settings(config: Mapping) -> dict:
    """The MCP process's issuer and Host allowlist, unless set: Better Auth's ``mcp``
    plugin writes ``{BETTER_AUTH_URL}/api/auth`` into ``iss``, and the endpoint is
    reached at the host of its public URL."""
    issuer = config.get("MCP_AUTHORIZATION_SERVER")
    if not issuer and config.get("BETTER_AUTH_URL"):
        issuer = f"{config['BETTER_AUTH_URL']}/api/auth"
    if not issuer and config.get("APP_ENV") != "production":
        issuer = "http://localhost:3000/api/auth"  # Better Auth beside the frontend's dev server
    resource = config.get("MCP_RESOURCE_URL")
    hosts = config.get("MCP_ALLOWED_HOSTS") or ([urlsplit(resource).netloc] if resource else [])
    return {"MCP_AUTHORIZATION_SERVER": issuer, "MCP_ALLOWED_HOSTS": hosts}


def startup_warnings(config: Mapping) -> list[str]:
    """What create_app logs: ``config_warnings``, unless gunicorn's master has
    logged them already (once for the server, not once per worker)."""
    return [] if os.environ.get(WARNINGS_LOGGED) else config_warnings(config)


def config_warnings(config: Mapping) -> list[str]:
    """Settings that are allowed but do not do what their owner probably wants;
    each is logged as one line at startup."""
    warnings = list(config.get("CONFIG_WARNINGS", ()))
    storage = config.get("RATELIMIT_STORAGE_URI", "memory://")
    if (
        config.get("RATELIMIT_ENABLED")
        and storage.startswith("memory://")
        and config.get("WEB_CONCURRENCY", 1) > 1
        and config.get("APP_ENV") != "development"  # make run's default: nothing to share
    ):
        warnings.append(
            f"RATELIMIT_STORAGE_URI is {storage} with WEB_CONCURRENCY="
            f"{config['WEB_CONCURRENCY']}: each worker counts on its own, so a client gets "
            f"up to {config['WEB_CONCURRENCY']} times the limit; set a redis:// URL to share."
        )
    if config.get("JWT_JWKS_URL") and not (
        config.get("BETTER_AUTH_URL") or (config.get("JWT_ISSUER") and config.get("JWT_AUDIENCE"))
    ):
        warnings.append(
            "JWT_JWKS_URL is set without BETTER_AUTH_URL (or JWT_ISSUER and JWT_AUDIENCE): "
            "tokens signed by that JWKS are accepted whatever issuer and audience they name."
        )
    return warnings


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


def check_mcp_config(config: Mapping) -> None:
    """What the MCP process (not the web one) refuses to start without in production."""
    if config.get("APP_ENV") != "production":
        return
    if not config.get("MCP_RESOURCE_URL"):
        raise ConfigError(
            "MCP_RESOURCE_URL must be set in production: the public URL of the MCP "
            "endpoint, which agents' tokens must name as their audience "
            "(e.g. https://api.example.com/mcp)."
        )
    if not config.get("JWT_JWKS_URL"):
        raise ConfigError(
            "The MCP server verifies Better Auth's tokens with its JWKS: set BETTER_AUTH_URL "
            "(or JWT_JWKS_URL)."
        )
    if not config.get("MCP_AUTHORIZATION_SERVER"):
        raise ConfigError(
            "MCP_AUTHORIZATION_SERVER (or BETTER_AUTH_URL) must be set in production: the "
            "issuer of agents' access tokens."
        )


def mcp_config_warnings(config: Mapping) -> list[str]:
    """What the MCP process lets through outside production but should be heard of."""
    warnings = []
    if not config.get("JWT_JWKS_URL"):
        warnings.append(
            "BETTER_AUTH_URL (or JWT_JWKS_URL) is not set: the MCP server can verify no "
            "token, so every call is refused (401)."
        )
    return warnings


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


def parse_origins(raw: str, warnings: list[str]) -> list[str]:
    """CORS_ORIGINS: comma-separated origins. A trailing slash is dropped (with a
    warning); a path or a pattern would never match a browser's Origin: refused."""
    origins = []
    for item in (item.strip() for item in raw.split(",")):
        if not item:
            continue
        origin = item.removesuffix("/")
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS_ORIGINS entry {item!r} is not an origin: write scheme://host[:port], "
                "without a path or wildcards (e.g. https://app.example.com)."
            )
        if origin != item:
            warnings.append(
                f"CORS_ORIGINS entry {item!r} has a trailing slash, which browsers never "
                f"send; using {origin!r}."
            )
        origins.append(origin)
    return origins


def parse_public_url(raw: str) -> str | None:
    """PUBLIC_URL: where clients reach the API (``https://api.example.com``), for absolute links."""
    url = raw.strip().removesuffix("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"PUBLIC_URL must be like https://api.example.com, not {raw!r}.")
    return url


def parse_resource_url(raw: str) -> str | None:
    """MCP_RESOURCE_URL: the MCP endpoint's public URL, with a path (``https://api.example.com/mcp``).

    Tokens name it in ``aud`` exactly as the metadata advertises it: no trailing
    slash, query or fragment.
    """
    url = raw.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path in ("", "/")
        or url.endswith("/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"MCP_RESOURCE_URL must be like https://api.example.com/mcp (a path, no "
            f"trailing slash), not {raw!r}."
        )
    return url


def parse_http_url(environ: Mapping[str, str], name: str) -> str | None:
    url = environ.get(name, "").strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, not {url!r}.")
    return url


def parse_hosts(raw: str) -> list[str]:
    """MCP_ALLOWED_HOSTS: Host header values, comma-separated (``api.example.com``,
    ``127.0.0.1:8001``; ``host:*`` for any port)."""
    hosts = [item.strip() for item in raw.split(",") if item.strip()]
    for host in hosts:
        if "/" in host or " " in host:
            raise ConfigError(
                f"MCP_ALLOWED_HOSTS entry {host!r} is not a host: write host or host:port."
            )
    return hosts


def parse_limit(environ: Mapping[str, str], name: str, default: str) -> str:
    """A limit in Flask-Limiter's notation ("600 per minute"); refused when it does not
    parse (a limit that cannot be read must not mean no limit at all)."""
    raw = environ.get(name, "").strip() or default
    try:
        if parse_many(raw):
            return raw
    except ValueError:
        pass
    raise ConfigError(f"{name} must be a limit like '600 per minute', not {raw!r}.")


def parse_choice(environ: Mapping[str, str], name: str, default: str, choices: tuple) -> str:
    raw = environ.get(name, "").strip().upper() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}.")
    return raw


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
    return parse_number(environ, name, default, int, "a whole number", minimum)


def parse_seconds(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float = 0
) -> float:
    return parse_number(environ, name, default, float, "a number of seconds", minimum)


def parse_number(environ: Mapping[str, str], name: str, default, convert, kind: str, minimum):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, not {raw!r}.") from None
    if not (value >= minimum and math.isfinite(value)):  # also refuses nan and inf
        raise ConfigError(f"{name} must be {kind} of at least {minimum}.")
    return value
