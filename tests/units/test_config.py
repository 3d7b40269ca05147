"""Configuration from the environment (docs/operations.md, Settings): parsing, refusing what
cannot work (weak production secrets too), and the warnings."""

from __future__ import annotations

import pytest

from taskapi import create_app
from taskapi.config import ConfigError, load_config, normalize_database_url

from ..helpers import bearer

STRONG_SECRET = "s" * 43


@pytest.fixture
def environ(monkeypatch, tmp_path):
    for name in ("APP_ENV", "BETTER_AUTH_SECRET", "DATABASE_URL", "JWT_ACCESS_TOKEN_EXPIRES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'config.sqlite3'}")
    return monkeypatch


@pytest.mark.parametrize("secret", [None, "", "too-short-secret"])
def test_production_refuses_missing_or_short_secret(environ, secret):
    environ.setenv("APP_ENV", "production")
    if secret is not None:
        environ.setenv("BETTER_AUTH_SECRET", secret)
    with pytest.raises(ConfigError, match="BETTER_AUTH_SECRET"):
        create_app()


def test_production_starts_with_a_strong_secret(environ, make_app):
    environ.setenv("APP_ENV", "production")
    environ.setenv("BETTER_AUTH_SECRET", STRONG_SECRET)
    environ.setenv("DATABASE_URL", "postgres://user:pw@db.example.neon.tech/app?sslmode=require")
    environ.setenv("JWT_ACCESS_TOKEN_EXPIRES", "900")
    app = make_app()
    assert app.config["JWT_SECRET_KEY"] == STRONG_SECRET
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == 900
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    assert url == "postgresql+psycopg2://user:pw@db.example.neon.tech/app?sslmode=require"
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["connect_timeout"] == 10
    assert options["isolation_level"] == "AUTOCOMMIT"
    assert options["hide_parameters"] is True


DEVELOPMENT = {"APP_ENV": "development"}


def test_development_needs_no_configuration(tmp_path):
    config = load_config(DEVELOPMENT, str(tmp_path))
    assert config["APP_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'taskapi.sqlite3'}"
    assert len(config["JWT_SECRET_KEY"]) >= 32
    # The same secret after a restart, so tokens keep working.
    assert load_config(DEVELOPMENT, str(tmp_path))["JWT_SECRET_KEY"] == config["JWT_SECRET_KEY"]
    assert (tmp_path / "dev-secret").stat().st_mode & 0o777 == 0o600


def test_development_secret_differs_per_instance_folder(tmp_path):
    first = load_config(DEVELOPMENT, str(tmp_path / "a"))["JWT_SECRET_KEY"]
    assert first != load_config(DEVELOPMENT, str(tmp_path / "b"))["JWT_SECRET_KEY"]


def test_explicit_secret_wins_in_development(tmp_path):
    config = load_config(DEVELOPMENT | {"BETTER_AUTH_SECRET": STRONG_SECRET}, str(tmp_path))
    assert config["JWT_SECRET_KEY"] == STRONG_SECRET
    assert not (tmp_path / "dev-secret").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+psycopg2://u@h/db?sslmode=require"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_forms(url, expected):
    assert normalize_database_url(url) == expected


def test_link_uses_forwarded_scheme_and_host_only_behind_trusted_proxies(
    app, database_url, make_app
):

    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tasks.example.com"}
    # Without a trusted proxy the link is root-relative: no Host header is echoed.
    for hops, expected in ((1, "https://tasks.example.com/"), (0, "/api/")):
        client = make_app(database_url, TRUSTED_PROXIES=hops).test_client()
        headers = bearer("proxied") | forwarded
        for _ in range(2):
            client.post("/api/proxied/tasks", json={"title": "x"}, headers=headers)
        response = client.get("/api/proxied/tasks?limit=1", headers=headers)
        assert response.headers["Link"].startswith(f"<{expected}"), hops


def test_app_env_is_production_unless_set(environ, tmp_path):
    """A deployment that forgets APP_ENV refuses a missing secret and reads no .env."""
    with pytest.raises(ConfigError, match="BETTER_AUTH_SECRET"):
        create_app()
    config = load_config({"BETTER_AUTH_SECRET": STRONG_SECRET}, str(tmp_path))
    assert config["APP_ENV"] == "production"
    assert config["CORS_ORIGINS"] == []


@pytest.mark.parametrize("value", ["Production", "PRODUCTION", " production "])
def test_app_env_is_read_in_any_case(environ, value):
    environ.setenv("APP_ENV", value)
    with pytest.raises(ConfigError, match="BETTER_AUTH_SECRET"):
        create_app()


def test_dotenv_is_read_in_development_only(environ, monkeypatch, make_app):
    import taskapi.config

    read = []
    monkeypatch.setattr(taskapi.config, "load_dotenv", read.append)
    environ.setenv("BETTER_AUTH_SECRET", STRONG_SECRET)
    for value, reads in (("PRODUCTION", 0), ("testing", 0), ("Development", 1)):
        environ.setenv("APP_ENV", value)
        make_app()
        assert len(read) == reads, value


@pytest.mark.parametrize(
    "environ",
    [
        {"APP_ENV": "staging"},
        {"JWT_ACCESS_TOKEN_EXPIRES": "an hour"},
        {"JWT_ACCESS_TOKEN_EXPIRES": "0"},
        {"MAX_CONTENT_LENGTH": "-5"},
        {"DATABASE_POOL_SIZE": "0"},
        {"WEB_CONCURRENCY": "0"},
        {"CORS_ORIGINS": "https://app.example.com/login"},
        {"CORS_ORIGINS": "https://*.example.com"},
        {"CORS_ORIGINS": "*"},
        {"CORS_ORIGINS": "app.example.com"},
        {"LOG_LEVEL": "verbose"},
        {"RATELIMIT_DEFAULT": "600 per minit"},
        {"RATELIMIT_AUTH": "ten per minute"},
        {"PUBLIC_URL": "tasks.example.com"},
        {"PUBLIC_URL": "https://tasks.example.com/?x=1"},
        {"DATABASE_STATEMENT_TIMEOUT": "5s"},
        {"DATABASE_STATEMENT_TIMEOUT": "-1"},
        {"JWT_JWKS_FAILURE_COOLDOWN": "nan"},
        {"JWT_JWKS_URL": "file:///etc/passwd"},
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_it(tmp_path, environ):
    with pytest.raises(ConfigError, match=next(iter(environ))):
        load_config(environ | {"BETTER_AUTH_SECRET": STRONG_SECRET}, str(tmp_path))


def test_settings_are_parsed(tmp_path):
    config = load_config(
        {
            "BETTER_AUTH_SECRET": STRONG_SECRET,
            "LOG_LEVEL": "debug",
            "PUBLIC_URL": "https://tasks.example.com/",
            "DATABASE_STATEMENT_TIMEOUT": "2.5",
            "DATABASE_POOL_SIZE": "4",
            "JWT_JWKS_REFRESH_COOLDOWN": "0.5",
            "CORS_ORIGINS": "https://app.example.com, http://localhost:3000, http://[::1]:8080",
        },
        str(tmp_path),
    )
    assert config["LOG_LEVEL"] == "DEBUG"
    assert config["PUBLIC_URL"] == "https://tasks.example.com"
    assert config["DATABASE_STATEMENT_TIMEOUT"] == 2.5
    assert config["DATABASE_POOL_SIZE"] == 4
    assert (config["JWT_JWKS_REFRESH_COOLDOWN"], config["JWT_JWKS_FAILURE_COOLDOWN"]) == (0.5, 30)
    assert len(config["CORS_ORIGINS"]) == 3
    assert load_config({}, str(tmp_path))["DATABASE_STATEMENT_TIMEOUT"] == 5


def warnings_at_startup(environ, log_records, make_app) -> list[str]:
    environ.setenv("APP_ENV", "production")
    environ.setenv("BETTER_AUTH_SECRET", STRONG_SECRET)
    make_app()
    return [r.getMessage() for r in log_records if r.levelname == "WARNING"]


def test_a_trailing_slash_in_cors_origins_is_dropped_with_a_warning(environ, log_records, make_app):
    environ.setenv("CORS_ORIGINS", "https://app.example.com/")
    environ.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    (warning,) = warnings_at_startup(environ, log_records, make_app)
    assert "CORS_ORIGINS" in warning and "'https://app.example.com'" in warning


def test_in_memory_limits_with_several_workers_warn(environ, log_records, make_app):
    environ.setenv("WEB_CONCURRENCY", "4")
    environ.delenv("RATELIMIT_STORAGE_URI", raising=False)
    (warning,) = warnings_at_startup(environ, log_records, make_app)
    assert "RATELIMIT_STORAGE_URI" in warning and "WEB_CONCURRENCY=4" in warning


def test_in_memory_limits_do_not_warn_in_development(environ, log_records, make_app):
    environ.setenv("APP_ENV", "development")
    environ.setenv("WEB_CONCURRENCY", "2")
    environ.delenv("RATELIMIT_STORAGE_URI", raising=False)
    make_app()
    assert [r.getMessage() for r in log_records if r.levelname == "WARNING"] == []


def test_unreachable_limit_storage_warns(environ, log_records, make_app):
    environ.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:1/0")
    (warning,) = warnings_at_startup(environ, log_records, make_app)
    assert "RATELIMIT_STORAGE_URI cannot be reached" in warning


def test_a_jwks_without_issuer_and_audience_warns(environ, log_records, make_app):
    environ.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    environ.setenv("JWT_JWKS_URL", "https://auth.example.com/api/auth/jwks")
    environ.delenv("BETTER_AUTH_URL", raising=False)
    (warning,) = warnings_at_startup(environ, log_records, make_app)
    assert "JWT_JWKS_URL" in warning and "issuer and audience" in warning


def test_a_sound_configuration_starts_without_warnings(environ, log_records, make_app):
    environ.setenv("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    environ.setenv("CORS_ORIGINS", "https://app.example.com")
    assert warnings_at_startup(environ, log_records, make_app) == []
