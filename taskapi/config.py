"""Configuration read from the environment, with a fail-fast check for production.

Every setting is parsed here (``load_config``), every setting that follows
from others is computed here (``derived_settings``), and nowhere else; the
rest of the package reads ``current_app.config``. docs/operations.md lists
them all. gunicorn's master loads this module by itself to check the same
settings before it forks (gunicorn.conf.py): it imports nothing from taskapi.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dotenv import load_dotenv
from limits import parse_many

ENVIRONMENTS = ("development", "production", "testing")
# Read in development only; variables already set win.
DOTENV = Path(__file__).resolve().parent.parent / ".env"
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
    vapid_private_key = environ.get("VAPID_PRIVATE_KEY", "").strip()
    if not vapid_private_key and env == "development":
        vapid_private_key = development_vapid_key(instance_path)
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
        # Web Push reminders (contract 4.10; docs/operations.md, "Reminders").
        "VAPID_PRIVATE_KEY": vapid_private_key or None,
        "VAPID_SUBJECT": parse_vapid_subject(environ, env),
        "PUSH_SERVICE_HOSTS": environ.get("PUSH_SERVICE_HOSTS", "").strip()
        or ",".join(DEFAULT_PUSH_SERVICE_HOSTS),
        "REMINDER_POLL_SECONDS": parse_seconds(environ, "REMINDER_POLL_SECONDS", 15, minimum=0.1),
        # How long a push service keeps a reminder for an offline device, and how
        # long a failing push is retried (FCM and Mozilla keep at most 28 days).
        "PUSH_TTL_SECONDS": parse_push_ttl(environ),
        "PUSH_TIMEOUT_SECONDS": parse_seconds(environ, "PUSH_TIMEOUT_SECONDS", 10, minimum=0.1),
        # Pushes one dispatcher has in flight at once (threads).
        "REMINDER_CONCURRENCY": parse_int(environ, "REMINDER_CONCURRENCY", 20, minimum=1),
        # A dispatcher's claim on a push lapses after this long unless renewed
        # (it renews while the push is in flight); then another may send it.
        "REMINDER_LEASE_SECONDS": parse_seconds(environ, "REMINDER_LEASE_SECONDS", 60, minimum=1),
        # CA certificates the dispatcher trusts: the system store unless these say otherwise.
        "PUSH_CA_BUNDLE": ca_bundle(environ),
        "CONFIG_WARNINGS": warnings,
    }


def derived_settings(config: Mapping) -> dict:
    """Settings that follow from others: the extensions' own keys.

    Computed after tests' overrides too, so an override of ``JWT_JWKS_URL``
    (say) brings its consequences with it.
    """
    jwks_algorithms = JWKS_ALGORITHMS if config.get("JWT_JWKS_URL") else ()
    return {
        **push_settings(config),
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


def push_settings(config: Mapping) -> dict:
    """The VAPID public key (for ``GET /api/push/key``) and the parsed push service hosts."""
    private_key = config.get("VAPID_PRIVATE_KEY")
    try:
        public_key = public_key_of(private_key) if private_key else None
    except ValueError:
        raise ConfigError(
            "VAPID_PRIVATE_KEY must be a raw P-256 private key, 32 bytes in base64url "
            "(make a pair with: flask --app taskapi vapid-keys)."
        ) from None
    try:
        hosts = parse_push_hosts(config.get("PUSH_SERVICE_HOSTS") or "")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return {"VAPID_PUBLIC_KEY": public_key, "PUSH_SERVICES": hosts}


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


def check_dispatcher_config(config: Mapping) -> None:
    """Refuse to run ``send-reminders`` without a VAPID key pair and subject.

    Development makes both up (``load_config``); elsewhere they must be set,
    or push services would refuse every push (or, with a key made up here,
    browsers' subscriptions would break at every restart).
    """
    missing = [name for name in ("VAPID_PRIVATE_KEY", "VAPID_SUBJECT") if not config.get(name)]
    if missing:
        raise ConfigError(
            f"send-reminders needs {' and '.join(missing)} (make a key pair with: "
            "flask --app taskapi vapid-keys; VAPID_SUBJECT is mailto:you@example.com or "
            "an https: URL)."
        )
    ca_file = config.get("PUSH_CA_BUNDLE")
    if not ca_file:
        raise ConfigError(
            "send-reminders found no CA certificates: install the system's (Debian: "
            "ca-certificates) or set SSL_CERT_FILE."
        )
    problem = ca_file_problem(ca_file)
    if problem:  # else every push would fail, one by one, with an OSError
        raise ConfigError(
            f"The CA file for pushes, {ca_file!r} (REQUESTS_CA_BUNDLE or SSL_CERT_FILE), {problem}."
        )


def ca_file_problem(path: str) -> str | None:
    """Why TLS cannot verify against ``path`` (a PEM file, or a folder of them), or None."""
    import ssl  # here: only the dispatcher's settings need it

    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        return "does not exist"
    except ssl.SSLError:
        return "holds no PEM certificate"
    except OSError as error:
        return f"cannot be read ({error.strerror or type(error).__name__})"
    return None


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


# RFC 8292: a mailto: address or an https: URL where the push service can reach the sender.
VAPID_SUBJECT = re.compile(r"mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?", re.ASCII)
DEVELOPMENT_VAPID_SUBJECT = "mailto:taskapi@localhost"
# Push services keep a message at most 28 days (FCM, Mozilla's autopush).
PUSH_TTL_MAX_SECONDS = 28 * 24 * 3600


def parse_vapid_subject(environ: Mapping[str, str], env: str) -> str | None:
    raw = environ.get("VAPID_SUBJECT", "").strip()
    if not raw:
        return DEVELOPMENT_VAPID_SUBJECT if env == "development" else None
    if not VAPID_SUBJECT.fullmatch(raw):
        raise ConfigError(
            f"VAPID_SUBJECT must be mailto:you@example.com or an https: URL, not {raw!r}."
        )
    return raw


def parse_push_ttl(environ: Mapping[str, str]) -> int:
    ttl = parse_int(environ, "PUSH_TTL_SECONDS", 24 * 3600, minimum=0)
    if ttl > PUSH_TTL_MAX_SECONDS:
        raise ConfigError(f"PUSH_TTL_SECONDS must be at most {PUSH_TTL_MAX_SECONDS} (28 days).")
    return ttl


def ca_bundle(environ: Mapping[str, str]) -> str | None:
    """The CA file for pushes: ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when set,
    else the system store (Debian's /etc/ssl/certs/ca-certificates.crt), never a
    bundle shipped with a Python package (it would miss a company's own CA)."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = environ.get(name, "").strip()
        if value:
            return value
    import ssl  # here: only the dispatcher's settings need it

    # OpenSSL's own default file (Debian: a link to the system store), read without
    # the environment: only the mapping given here counts.
    for path in (ssl.get_default_verify_paths().openssl_cafile, DEBIAN_CA_FILE):
        if path and os.path.isfile(path):
            return path
    return None  # the dispatcher refuses to start without one


DEBIAN_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


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


# Web Push settings (docs/api.md, "Reminders by Web Push"). The dispatcher and the
# endpoint rule (taskapi.push) use what is parsed here; this module stays free of
# the package's imports (gunicorn's master loads it by itself).

DEFAULT_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge, Opera, Samsung Internet
    "push.services.mozilla.com",  # Firefox
    "notify.windows.com",  # Edge's legacy WNS endpoints
    "push.apple.com",  # Safari
)
DEFAULT_HTTPS_PORT = 443
HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
HOST_NAME_MAX_LENGTH = 253
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PushHost(NamedTuple):
    """One entry of ``PUSH_SERVICE_HOSTS``: a host name or an IP address, and a port or None."""

    host: str
    address: IPAddress | None  # set when the entry is an IP literal
    port: int | None

    def admits(self, host: str, port: int) -> bool:
        """Whether an endpoint on ``host``:``port`` is on this entry (taskapi.push.endpoints)."""
        if self.port is not None and port != self.port:
            return False
        if self.address is not None:
            return host_address(host) == self.address  # any port of a listed address
        if self.port is None and port != DEFAULT_HTTPS_PORT:
            return False
        return host == self.host or host.endswith("." + self.host)


def parse_push_hosts(raw: str) -> tuple[PushHost, ...]:
    """``PUSH_SERVICE_HOSTS``: comma-separated host names or IP addresses, each
    with an optional ``:port``. ValueError names an entry that is neither."""
    entries = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, port = split_port(item.lower())
        address = host_address(host)
        if address is None and not is_host_name(host):
            raise ValueError(
                f"PUSH_SERVICE_HOSTS entry {item!r} is not a host name or an IP address "
                "(write fcm.googleapis.com, push.example.com:8443 or 127.0.0.1)."
            )
        entries.append(PushHost(host, address, port))
    if not entries:
        raise ValueError("PUSH_SERVICE_HOSTS names no host.")
    return tuple(entries)


def split_port(item: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``host``, ``v6``: the host and the port (or None)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return item, None  # fails the checks that follow
        port = rest[1:]
    elif item.count(":") == 1:
        host, port = item.split(":")
    else:
        return item, None  # a host name, or a bare IPv6 address
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"PUSH_SERVICE_HOSTS entry {item!r} has no valid port.")
    return host, int(port)


def host_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_host_name(host: str) -> bool:
    """Letters, digits and hyphens in dot-separated labels, ending in a name (not a number)."""
    if not host or len(host) > HOST_NAME_MAX_LENGTH or not host.isascii():
        return False
    labels = host.split(".")
    # A last label of digits (or 0x...) is how inet_aton spells an address: 127.1, 0x7f.1.
    return all(HOST_LABEL.fullmatch(label) for label in labels) and not re.fullmatch(
        r"[0-9]+|0x[0-9a-f]*", labels[-1]
    )


# VAPID keys (RFC 8292): VAPID_PRIVATE_KEY is the raw 32-byte P-256 private key,
# base64url, as `web-push generate-vapid-keys` (and `flask --app taskapi vapid-keys`)
# prints it; the public key browsers get from GET /api/push/key is derived from it.
VAPID_PRIVATE_KEY_BYTES = 32
BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
DEVELOPMENT_VAPID_KEY_FILE = "vapid-private-key"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url, padded or not; ValueError for anything else (the standard
    library would skip characters outside the alphabet)."""
    if not isinstance(text, str) or not BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def public_key_of(raw_private_key: str) -> str:
    """The public key for a raw private key: an uncompressed P-256 point, base64url.
    ValueError when ``raw_private_key`` is no private key."""
    value = b64url_decode(raw_private_key.strip())
    if len(value) != VAPID_PRIVATE_KEY_BYTES:
        raise ValueError("not 32 bytes")
    private_key = ec.derive_private_key(int.from_bytes(value, "big"), ec.SECP256R1())  # 0: error
    return b64url_encode(
        private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def generate_vapid_private_key() -> str:
    """A new raw private key, base64url."""
    private_value = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    return b64url_encode(private_value.to_bytes(VAPID_PRIVATE_KEY_BYTES, "big"))


def development_vapid_key(instance_path: str) -> str:
    """A private key kept in the instance folder (made once, like the secret), so that
    development works without configuration and subscriptions survive restarts."""
    path = Path(instance_path) / DEVELOPMENT_VAPID_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(generate_vapid_private_key() + "\n")
    return path.read_text().strip()
