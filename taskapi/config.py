"""Configuration read from the environment, with a fail-fast check for production.

Every setting is parsed here (``load_config``), every setting that follows
from others is computed here (``derived_settings``), and nowhere else; the
rest of the package reads ``current_app.config``. docs/operations.md lists
them all.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from .push.endpoints import DEFAULT_PUSH_SERVICE_HOSTS, parse_push_hosts
from .push.vapid import development_key, public_key_of

ENVIRONMENTS = ("development", "production", "testing")
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
    vapid_private_key = environ.get("VAPID_PRIVATE_KEY", "").strip()
    if not vapid_private_key and env == "development":
        vapid_private_key = development_key(instance_path)
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
        # gunicorn reads it too (gunicorn.conf.py); here for the warning below.
        "WEB_CONCURRENCY": parse_int(environ, "WEB_CONCURRENCY", 2, minimum=1),
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
    }


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
    """Settings that are allowed but do not do what their owner probably wants.

    create_app logs each as one line at startup.
    """
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
    if not config.get("PUSH_CA_BUNDLE"):
        raise ConfigError(
            "send-reminders found no CA certificates: install the system's (Debian: "
            "ca-certificates) or set SSL_CERT_FILE."
        )


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
    import ssl  # here: gunicorn's gevent workers patch ssl before the app is imported

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
