"""Command-line tools: ``flask --app taskapi token USER_ID``, housekeeping, and the
reminder dispatcher (``send-reminders``) with its keys (``vapid-keys``)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_jwt_extended import create_access_token

from .auth.tokens import is_valid_user_id
from .config import (
    ConfigError,
    check_dispatcher_config,
    generate_vapid_private_key,
    public_key_of,
    refusal,
)
from .data.idempotency_keys import purge_expired_keys
from .data.trash_store import purge_expired_trash
from .extensions import db


@click.command("token")
@with_appcontext
@click.argument("user_id")
@click.option("--email", help="Email claim, stored when the user is first seen.")
@click.option("--name", help="Name claim, stored when the user is first seen.")
@click.option("--expires-in", type=click.IntRange(min=1), help="Lifetime in seconds.")
def token_command(user_id: str, email: str | None, name: str | None, expires_in: int | None):
    """Print an access token for USER_ID (for curl and scripts)."""
    if not is_valid_user_id(user_id):
        raise click.BadParameter(
            "letters, digits and ._~:@|+=- only, at most 255", param_hint="USER_ID"
        )
    claims = {key: value for key, value in {"email": email, "name": name}.items() if value}
    expires = timedelta(seconds=expires_in) if expires_in else None
    click.echo(
        create_access_token(identity=user_id, additional_claims=claims, expires_delta=expires)
    )


@click.command("purge-idempotency-keys")
@with_appcontext
def purge_idempotency_keys_command():
    """Delete Idempotency-Key records older than 24 hours (run it daily)."""
    click.echo(f"Deleted {purge_expired_keys()} expired idempotency keys.")


@click.command("purge-trash")
@with_appcontext
def purge_trash_command():
    """Delete tasks trashed more than TRASH_RETENTION_DAYS ago, and old tombstones (run daily)."""
    tasks, tombstones = purge_expired_trash()
    click.echo(f"Deleted {tasks} expired tasks from the trash and {tombstones} old tombstones.")


@click.command("vapid-keys")
def vapid_keys_command():
    """Print a new VAPID key pair for VAPID_PRIVATE_KEY (the public key is derived from it)."""
    private_key = generate_vapid_private_key()
    click.echo(f"VAPID_PRIVATE_KEY={private_key}")
    click.echo(f"# public key (GET /api/push/key serves it): {public_key_of(private_key)}")


@click.command("send-reminders")
@with_appcontext
def send_reminders_command():
    """Push due reminders to subscribed browsers until stopped (SIGTERM, Ctrl-C)."""
    from flask import current_app

    try:
        check_dispatcher_config(current_app.config)
    except ConfigError as error:  # one line and exit status 1, as for the app's settings
        raise click.ClickException(refusal(error, os.environ)) from None
    # Here, not at the top: web workers never load pywebpush, requests or aiohttp.
    from .push.dispatcher import Dispatcher

    dispatcher = Dispatcher(current_app._get_current_object())
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: dispatcher.stop())
    dispatcher.run()
    if dispatcher.abandoned:
        # A push service still holds a thread past the grace period; its claim
        # was given back. Do not wait for the thread at interpreter exit.
        logging.shutdown()
        os._exit(0)


def register_commands(app: Flask) -> None:
    """Every ``flask --app taskapi ...`` command."""
    app.cli.add_command(token_command)
    app.cli.add_command(purge_idempotency_keys_command)
    app.cli.add_command(purge_trash_command)
    app.cli.add_command(vapid_keys_command)
    app.cli.add_command(send_reminders_command)
    if app.testing or running_as_command():
        register_migrations(app)


def register_migrations(app: Flask) -> None:
    """``flask db ...``: Flask-Migrate, loaded only when the app runs as a command."""
    from flask_migrate import Migrate

    directory = os.path.join(app.root_path, os.pardir, "migrations")
    Migrate(app, db, directory=directory, render_as_batch=True)


def running_as_command() -> bool:
    """Whether the app is being built by ``flask --app taskapi ...``."""
    return click.get_current_context(silent=True) is not None


@contextmanager
def one_line_refusals() -> Iterator[None]:
    """On the command line, a ConfigError ends the command with one line on stderr
    and exit status 1 (click's way), not a traceback; elsewhere it propagates."""
    try:
        yield
    except ConfigError as error:
        if not running_as_command():
            raise
        raise click.ClickException(refusal(error, os.environ)) from None
