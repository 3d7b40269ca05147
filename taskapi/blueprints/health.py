"""Liveness and readiness probes for the platform's health checks."""

from flask import Blueprint
from sqlalchemy import text

from ..errors import service_unavailable
from ..extensions import db
from ..http.openapi import ReadySchema, StatusSchema, documented, success

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented(responses={200: success(StatusSchema)})
def healthz():
    """The process is up (the database is not touched)."""
    return {"status": "ok"}


@bp.get("/readyz")
@documented(responses={200: success(ReadySchema)}, errors=(503,))
def readyz():
    """The database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the reason goes to the log only
        db.session.rollback()
        return service_unavailable("The database is not reachable.")
    return {"status": "ok", "database": "ok"}
