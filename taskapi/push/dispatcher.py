"""The reminder dispatcher: ``flask --app taskapi send-reminders`` (contract 4.10).

Every ``REMINDER_POLL_SECONDS`` it claims the reminders that have come due
(taskapi.data.push_store: one claim per reminder and subscription, whoever
else is claiming), reads each claimed task once more right before sending
(completed, trashed, cleared or snoozed since: nothing is sent), and hands
the pushes to a pool of ``REMINDER_CONCURRENCY`` threads, so that a push
service that hangs holds up one thread for ``PUSH_TIMEOUT_SECONDS``, not
everyone's reminders. While work remains it claims again as soon as a
thread is free instead of waiting for the next poll.

Only this loop's thread touches the database, and only between pushes:
each statement commits on its own, none is open while a push is on the
network. Outcomes: sent; 404/410 ends the subscription (deleted); 429, 5xx,
a timeout or a failed connection is retried with exponential backoff (or
after ``Retry-After``) until ``PUSH_TTL_SECONDS`` after the first attempt;
anything else is recorded as failed. Claims held by this dispatcher are
renewed while their pushes are in flight.

SIGTERM (or Ctrl-C) stops claiming, lets the pushes in flight finish and
records them, gives back any claim still held, and exits. Hourly it records
reminders that came due more than 24 h ago while no dispatcher ran (logged,
not sent) and forgets old deliveries.

Logs say what happened with subscription ids, statuses and counts; never an
endpoint, a key or a payload.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from urllib.parse import quote

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..data import push_store
from ..data.push_store import Claim, Push
from ..extensions import db
from ..schemas.fields import rfc3339
from .sender import Outcome, Sender

log = logging.getLogger("taskapi.push")

# A reminder is sent up to this late (the dispatcher was down), never later.
LATE_LIMIT = timedelta(hours=24)
# How far back the hourly sweep looks for reminders that passed LATE_LIMIT unsent.
LATE_SWEEP = timedelta(days=7)
# Deliveries are kept this long after their reminder (longer than the sweep looks back).
KEEP_DELIVERIES = timedelta(days=8)
HOUSEKEEPING_SECONDS = 3600
REPORT_SECONDS = 60
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 600.0
# Most rows one fan-out makes (the rest wait for the next, at once).
FAN_OUT_LIMIT = 5000
# After a database error, the loop waits this long before trying again.
DATABASE_RETRY_SECONDS = 2.0


class Dispatcher:
    """One dispatcher: ``run()`` until ``stop()``; ``run_until_idle()`` for tests."""

    def __init__(self, app: Flask, sender: Sender | None = None):
        config = app.config
        self.app = app
        self.name = secrets.token_hex(16)  # claimed_by: this process's claims
        self.poll = config["REMINDER_POLL_SECONDS"]
        self.lease = config["REMINDER_LEASE_SECONDS"]
        self.ttl = config["PUSH_TTL_SECONDS"]
        self.concurrency = config["REMINDER_CONCURRENCY"]
        # Long enough for a push's connect and read timeouts, and its recording.
        self.grace = 2 * config["PUSH_TIMEOUT_SECONDS"] + 5
        self.sender = sender or Sender(config)
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="push")
        self.in_flight: dict[Future, Push] = {}
        self.unrecorded: list[tuple[Push, Outcome]] = []
        self.stopping = threading.Event()
        self.abandoned = 0  # pushes still in flight when the dispatcher gave up waiting
        self.counts: Counter[str] = Counter()
        self.next_renewal = 0.0
        self.next_fan_out = 0.0
        self.next_record = 0.0
        self.batch = max(1, self.concurrency // 4)
        self.next_housekeeping = 0.0
        self.next_report = time.monotonic() + REPORT_SECONDS

    def stop(self) -> None:
        """Stop claiming; ``run()`` then finishes what is in flight and returns."""
        self.stopping.set()

    def run(self) -> None:
        with self.app.app_context():
            log.info(
                "dispatcher %s started: polling every %g s, %d pushes at once",
                self.name,
                self.poll,
                self.concurrency,
            )
            next_poll = time.monotonic()
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= next_poll and self.room_for_a_batch():
                        more = self.claim_and_send()
                        next_poll = time.monotonic() + (0 if more else self.poll)
                    self.keep_claims()
                    self.housekeeping()
                except SQLAlchemyError as error:
                    self.database_failed(error)
                    next_poll = time.monotonic() + DATABASE_RETRY_SECONDS
                self.report()
                if self.room_for_a_batch():
                    timeout = min(1.0, max(0.0, next_poll - time.monotonic()))
                else:
                    timeout = 1.0  # returns as soon as a push finishes
                self.collect(timeout)
            self.shut_down()

    def run_until_idle(self) -> None:
        """Claim and send until nothing is due and nothing is in flight (tests)."""
        with self.app.app_context():
            more = True
            while more or self.in_flight:
                if self.free_slots():
                    more = self.claim_and_send()
                self.collect(0.0 if more and self.free_slots() else 1.0)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # Claiming and sending.

    def free_slots(self) -> int:
        return self.concurrency - len(self.in_flight)

    def room_for_a_batch(self) -> bool:
        """Claims go in batches of a quarter of the threads (one statement for
        several pushes), or whatever is free when nothing is in flight."""
        free = self.free_slots()
        return free >= self.batch or (free > 0 and not self.in_flight)

    def claim_and_send(self) -> bool:
        """Make rows for the reminders that came due, claim what fits in the free
        threads and start sending it; True when more may be waiting already."""
        free = self.free_slots()
        now = push_store.clock()
        made = 0
        if time.monotonic() >= self.next_fan_out:  # it reads the whole last day: once a poll
            made = push_store.fan_out(now, now - LATE_LIMIT, FAN_OUT_LIMIT)
            self.next_fan_out = time.monotonic() + (0 if made == FAN_OUT_LIMIT else self.poll)
        claims = push_store.claim(self.name, free, now, self.lease)
        more = len(claims) == free or made == FAN_OUT_LIMIT
        pushes, stale = push_store.pushes_for(claims)
        push_store.forget(self.name, stale)
        if stale:
            self.counts["cancelled"] += len(stale)
        for push in pushes:
            future = self.pool.submit(self.send, push, self.remaining_ttl(push.claim, now))
            self.in_flight[future] = push
        return more

    def remaining_ttl(self, claim: Claim, now: datetime) -> int:
        """The TTL header: what is left of the TTL since the reminder came due."""
        spent = (now - claim.due_since).total_seconds()
        return max(0, int(self.ttl - spent))

    def send(self, push: Push, ttl: int) -> Outcome:
        """In a pool thread: one push, whatever goes wrong."""
        try:
            return self.sender.send(push.endpoint, push.p256dh, push.auth, payload(push), ttl)
        except Exception as error:  # a bug: logged without its message (it may quote the URL)
            return Outcome("failed", f"unexpected {type(error).__name__}")

    def collect(self, timeout: float) -> None:
        """Wait up to ``timeout`` for pushes to finish, and record those that did."""
        if not self.in_flight:
            self.stopping.wait(timeout)
        else:
            wait(list(self.in_flight), timeout, return_when=FIRST_COMPLETED)
            for future in [future for future in self.in_flight if future.done()]:
                self.unrecorded.append((self.in_flight.pop(future), future.result()))
        # Recorded in batches too: a few at a time, or within half a second.
        if self.unrecorded and (
            len(self.unrecorded) >= self.batch
            or not self.in_flight
            or time.monotonic() >= self.next_record
            or self.stopping.is_set()
        ):
            try:
                self.record()
            except SQLAlchemyError as error:
                self.database_failed(error)  # kept in unrecorded: tried again next time
            self.next_record = time.monotonic() + 0.5

    def record(self) -> None:
        results, now = self.unrecorded, push_store.clock()
        by_kind: dict[str, list[Claim]] = {}
        retries: list[tuple[Claim, datetime]] = []
        gone: set[int] = set()
        for push, outcome in results:
            claim = push.claim
            kind = outcome.kind
            if kind == "retry":
                retry_at = now + timedelta(seconds=self.backoff(claim, outcome))
                if retry_at - claim.due_since > timedelta(seconds=self.ttl):
                    kind = "expired"
                else:
                    retries.append((claim, retry_at))
                    log.info(
                        "push to subscription %d will be retried in %d s: %s",
                        claim.subscription_id,
                        round((retry_at - now).total_seconds()),
                        outcome.detail,
                    )
            if kind == "gone":
                gone.add(claim.subscription_id)
            elif kind != "retry":
                by_kind.setdefault(kind, []).append(claim)
            if kind in ("failed", "refused", "expired"):
                log.warning(
                    "push to subscription %d %s: %s", claim.subscription_id, kind, outcome.detail
                )
            self.counts[kind] += 1
        for kind, claims in by_kind.items():
            push_store.finish(self.name, claims, kind, now, attempted=True)
        push_store.retry_later(self.name, retries)
        if gone:
            push_store.end_subscriptions(sorted(gone))
            for subscription_id in sorted(gone):
                log.info("subscription %d ended: gone from its push service", subscription_id)
        self.unrecorded = []

    def backoff(self, claim: Claim, outcome: Outcome) -> float:
        if outcome.retry_after is not None:
            return max(1.0, outcome.retry_after)
        return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2**claim.attempts)

    # Keeping claims, housekeeping, reporting, stopping.

    def keep_claims(self) -> None:
        """Renew the claims of pushes in flight well before they lapse."""
        if self.in_flight and time.monotonic() >= self.next_renewal:
            push_store.renew(self.name, push_store.clock(), self.lease)
            self.next_renewal = time.monotonic() + self.lease / 3

    def housekeeping(self) -> None:
        if time.monotonic() < self.next_housekeeping:
            return
        self.next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
        now = push_store.clock()
        late = push_store.mark_too_late(now, now - LATE_LIMIT, now - LATE_SWEEP)
        if late:
            log.warning(
                "%d reminders came due more than 24 h ago while no dispatcher ran: not sent", late
            )
        push_store.purge(now - KEEP_DELIVERIES, now)

    def report(self) -> None:
        if time.monotonic() < self.next_report:
            return
        self.next_report = time.monotonic() + REPORT_SECONDS
        if self.counts:
            log.info("reminders in the last %d s: %s", REPORT_SECONDS, summary(self.counts))
            self.counts.clear()

    def database_failed(self, error: SQLAlchemyError) -> None:
        # The class name only: driver messages can carry host names and values.
        log.warning("database unavailable: %s; trying again shortly", type(error).__name__)
        try:
            db.session.rollback()
        except SQLAlchemyError:
            db.session.remove()

    def shut_down(self) -> None:
        """Let the pushes in flight finish (within the grace period), record them,
        and give back whatever claim is still held."""
        if self.in_flight:
            log.info("stopping: finishing %d pushes in flight", len(self.in_flight))
        deadline = time.monotonic() + self.grace
        while self.in_flight and time.monotonic() < deadline:
            try:
                self.keep_claims()
            except SQLAlchemyError as error:
                self.database_failed(error)
            self.collect(min(1.0, max(0.0, deadline - time.monotonic())))
        self.abandoned = len(self.in_flight)
        try:
            if self.unrecorded:
                self.record()
            released = push_store.release(self.name, push_store.clock())
        except SQLAlchemyError as error:
            self.database_failed(error)
            released = 0  # the leases lapse by themselves
        self.pool.shutdown(wait=not self.abandoned, cancel_futures=True)
        if self.counts:
            log.info("reminders since the last report: %s", summary(self.counts))
        log.info(
            "dispatcher %s stopped%s",
            self.name,
            f"; gave back {released} claims for another dispatcher" if released else "",
        )


def payload(push: Push) -> str:
    """The notification's data, as the service worker receives it (JSON)."""
    claim = push.claim
    return json.dumps(
        {
            "task_id": claim.task_id,
            "title": push.title,
            "due_at": rfc3339(push.due_at),
            "remind_at": rfc3339(claim.remind_at),
            "url": f"/api/{quote(push.user_id, safe='')}/tasks/{claim.task_id}",
        },
        ensure_ascii=False,
    )


def summary(counts: Counter) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()) if count)
