"""How long a deletion is remembered: by the trash, by tombstones, and so by the change feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app

from .models import utcnow

# Tombstones outlive the retention by this much: a change-feed token is refused
# (410) from the retention on, by whichever server's clock, so no token that is
# still accepted can need a tombstone that was purged.
TOMBSTONE_MARGIN = timedelta(days=1)


def retention_cutoff() -> datetime:
    """Tasks trashed before this moment have expired, and so have change-feed
    tokens whose reader was last caught up before it."""
    try:
        return utcnow() - timedelta(days=current_app.config["TRASH_RETENTION_DAYS"])
    except OverflowError:  # a retention longer than the calendar: nothing expires
        return datetime.min.replace(tzinfo=UTC)
