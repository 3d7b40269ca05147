"""taskapi: a JSON API for each person's tasks, guarded by bearer tokens."""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth.limits import init_limits
from .auth.tokens import init_auth
from .auth.users import init_users
from .blueprints import accounts, changes, docs, health, push, tags, tasks, trash
from .commands import one_line_refusals, register_commands
from .config import completed, config_warnings, from_environment, load_config
from .data.database import init_database
from .errors import register_error_handlers
from .http.cors import init_cors
from .http.flask_app import TaskAPI
from .http.request_log import init_request_log
from .http.routing import init_routing


def create_app(config: Mapping | None = None) -> Flask:
    """Build the app from the environment, or from ``config`` when given (tests)."""
    # No static folder: the API serves JSON (and the docs assets, from their package).
    app = TaskAPI(__name__, instance_relative_config=True, static_folder=None)
    with one_line_refusals():
        configure(app, config)
    trust_proxies(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure(app: Flask, overrides: Mapping | None) -> None:
    os.makedirs(app.instance_path, exist_ok=True)
    if overrides is None:
        app.config.update(from_environment(app.instance_path))
    else:
        testing = load_config({"APP_ENV": "testing"}, app.instance_path)
        app.config.update(completed({**testing, **overrides}))


def trust_proxies(app: Flask) -> None:
    """Behind N proxies (a PaaS router), take client address, scheme and host from them.

    Absolute URLs (the Link header) then say https:// and the public host.
    """
    hops = app.config.get("TRUSTED_PROXIES", 0)
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


def register_extensions(app: Flask) -> None:
    init_request_log(app)
    for warning in config_warnings(app.config):
        app.logger.warning("configuration: %s", warning)
    init_database(app)
    init_auth(app)
    init_users(app)
    init_limits(app)
    init_cors(app)


def register_blueprints(app: Flask) -> None:
    init_routing(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(tags.bp)
    app.register_blueprint(trash.bp)
    app.register_blueprint(changes.bp)
    app.register_blueprint(push.key_bp)
    app.register_blueprint(push.bp)
    app.register_blueprint(docs.bp)
