"""Reminders pushed to a real (stand-in) push service over HTTPS (contract 4.10).

One dispatcher runs in this process, a pass at a time (``run_until_idle``),
against the stand-in service of harness/push_service.py, which checks every
push as a vendor's service and a browser would (VAPID, TTL, encoding, the
payload decrypted with the subscription's keys): ``problems`` stays empty.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from harness.push_service import Answer, PushService
from taskapi.config import generate_vapid_private_key, public_key_of
from taskapi.data.models import PushDelivery, PushSubscription, Task
from taskapi.extensions import db
from taskapi.push import dispatcher as dispatcher_module
from taskapi.push.dispatcher import Dispatcher

from ..helpers import bearer, build_app, dispose

VAPID_PRIVATE_KEY = generate_vapid_private_key()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    service = PushService(
        tmp_path_factory.mktemp("push"), vapid_key=public_key_of(VAPID_PRIVATE_KEY)
    )
    yield service
    service.stop()


def push_settings(service: PushService, **overrides) -> dict:
    return {
        "VAPID_PRIVATE_KEY": VAPID_PRIVATE_KEY,
        "VAPID_SUBJECT": "mailto:ops@example.com",
        "PUSH_SERVICE_HOSTS": "127.0.0.1",
        "PUSH_CA_BUNDLE": str(service.ca_file),
        "PUSH_TIMEOUT_SECONDS": 1,
        "REMINDER_POLL_SECONDS": 0.2,
        **overrides,
    }


@pytest.fixture(scope="module")
def push_app(database_url, migrated_app, service):
    app = build_app(database_url, **push_settings(service))
    yield app
    dispose(app)


@pytest.fixture
def client(app, push_app, service):
    """The push app's client; its service must have refused nothing by the end."""
    yield push_app.test_client()
    push_app.extensions["taskapi.known_users"].clear()  # `app` emptied the tables
    problems, service.problems[:] = list(service.problems), []
    assert problems == []


def dispatch(app) -> None:
    dispatcher = Dispatcher(app)
    try:
        dispatcher.run_until_idle()
    finally:
        dispatcher.close()


def soon(seconds: float = 0.2) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def subscribe(client, service, user: str = "alice") -> str:
    body = service.subscribe()
    response = client.post(f"/api/{user}/push/subscriptions", json=body, headers=bearer(user))
    assert response.status_code == 201
    return body["endpoint"]


def create(client, user: str = "alice", **fields) -> dict:
    response = client.post(
        f"/api/{user}/tasks", json={"title": "Water the plants"} | fields, headers=bearer(user)
    )
    assert response.status_code == 201
    return response.json


def payloads(service, endpoint: str) -> list[dict]:
    return [push.payload for push in service.received(endpoint)]


def outcomes(app) -> list[str]:
    with app.app_context():
        rows = db.session.execute(select(PushDelivery.outcome)).scalars().all()
        db.session.commit()
    return sorted(str(outcome) for outcome in rows)


def test_every_device_of_the_owner_gets_it_once_and_nobody_else(client, push_app, service):
    phone, laptop = subscribe(client, service), subscribe(client, service)
    bobs = subscribe(client, service, "bob")
    task = create(client, remind_at=soon(), due_at="2030-01-01T09:00:00Z", title="Pay rent ✓")
    create(client, "bob", remind_at=soon(3600))  # bob's is not due
    create(client, "carol", remind_at=soon())  # carol has no subscription
    time.sleep(0.3)
    sent_before = time.time()
    dispatch(push_app)
    dispatch(push_app)  # a second pass sends nothing again

    expected = {
        "task_id": task["id"],
        "title": "Pay rent ✓",
        "due_at": "2030-01-01T09:00:00Z",
        "remind_at": task["remind_at"],
        "url": f"/api/alice/tasks/{task['id']}",
    }
    assert payloads(service, phone) == [expected]
    assert payloads(service, laptop) == [expected]
    assert service.received(bobs) == []
    push = service.received(phone)[0]
    assert push.headers["ttl"] == "86400"
    assert push.headers["urgency"] == "high"
    assert push.headers["content-encoding"] == "aes128gcm"
    assert push.claims["aud"] == service.origin
    assert push.claims["sub"] == "mailto:ops@example.com"
    assert sent_before < push.claims["exp"] <= sent_before + 24 * 3600
    assert outcomes(push_app) == ["sent", "sent"]


def test_snooze_sends_again_and_clear_complete_trash_send_nothing(client, push_app, service):
    endpoint = subscribe(client, service)
    snoozed, cleared, completed, trashed = (
        create(client, title=title, remind_at=soon(0.3))
        for title in ("snoozed", "cleared", "completed", "trashed")
    )
    url = "/api/alice/tasks/{}"
    client.patch(url.format(cleared["id"]), json={"remind_at": None}, headers=bearer())
    client.patch(url.format(completed["id"]), json={"completed": True}, headers=bearer())
    client.delete(url.format(trashed["id"]), headers=bearer())
    time.sleep(0.4)
    dispatch(push_app)
    assert [payload["title"] for payload in payloads(service, endpoint)] == ["snoozed"]

    later = client.patch(url.format(snoozed["id"]), json={"remind_at": soon(0.3)}, headers=bearer())
    dispatch(push_app)
    assert len(payloads(service, endpoint)) == 1  # not yet
    time.sleep(0.4)
    dispatch(push_app)
    assert [payload["remind_at"] for payload in payloads(service, endpoint)] == [
        snoozed["remind_at"],
        later.json["remind_at"],
    ]


def test_a_task_changed_between_claim_and_send_is_not_sent(client, push_app, service, monkeypatch):
    """The dispatcher reads the task once more right before sending."""
    endpoint = subscribe(client, service)
    done, moved, _kept = (create(client, title=title, remind_at=soon()) for title in "abc")
    claim = dispatcher_module.push_store.claim

    def claim_then_change(*args, **kwargs):
        claimed = claim(*args, **kwargs)
        client.patch(f"/api/alice/tasks/{done['id']}/complete", headers=bearer())
        client.patch(
            f"/api/alice/tasks/{moved['id']}", json={"remind_at": soon(60)}, headers=bearer()
        )
        return claimed

    monkeypatch.setattr(dispatcher_module.push_store, "claim", claim_then_change)
    time.sleep(0.3)
    dispatch(push_app)
    assert [payload["title"] for payload in payloads(service, endpoint)] == ["c"]
    assert outcomes(push_app) == ["sent"]  # the others' rows are deleted, nothing was sent


def test_a_change_undone_after_a_cancelled_claim_still_sends_it_once(
    client, push_app, service, monkeypatch
):
    """Trashed, completed or cleared between claim and send, then restored, reopened
    or set back: the reminder is sent once, as if the claim had come after the undo."""
    endpoint = subscribe(client, service)
    trashed, completed, cleared = (create(client, title=t, remind_at=soon()) for t in "abc")
    url = "/api/alice/tasks/{}"
    claim = dispatcher_module.push_store.claim

    def claim_then_change(*args, **kwargs):
        claimed = claim(*args, **kwargs)
        if claimed:
            client.delete(url.format(trashed["id"]), headers=bearer())
            client.patch(url.format(completed["id"]), json={"completed": True}, headers=bearer())
            client.patch(url.format(cleared["id"]), json={"remind_at": None}, headers=bearer())
        return claimed

    monkeypatch.setattr(dispatcher_module.push_store, "claim", claim_then_change)
    time.sleep(0.3)
    dispatch(push_app)
    assert payloads(service, endpoint) == []
    monkeypatch.undo()

    undone = [
        client.post(f"/api/alice/trash/{trashed['id']}/restore", headers=bearer()),
        client.patch(url.format(completed["id"]), json={"completed": False}, headers=bearer()),
        client.patch(
            url.format(cleared["id"]), json={"remind_at": cleared["remind_at"]}, headers=bearer()
        ),
    ]
    assert [response.status_code for response in undone] == [200, 200, 200]
    dispatch(push_app)
    dispatch(push_app)
    assert sorted(payload["title"] for payload in payloads(service, endpoint)) == ["a", "b", "c"]
    assert outcomes(push_app) == ["sent"] * 3


def test_a_dispatcher_whose_clock_runs_ahead_takes_no_claim_early(
    client, push_app, service, backend, monkeypatch
):
    """Leases and due times are read on the database's clock, not the host's."""
    if backend != "postgresql":
        pytest.skip("SQLite runs in each dispatcher's process: its clock is the host's")
    endpoint = subscribe(client, service)
    service.answer(endpoint, Answer(delay=0.5))
    create(client, title="due", remind_at=soon())
    create(client, title="in a minute", remind_at=soon(60))
    time.sleep(0.3)
    on_time, ahead = Dispatcher(push_app), Dispatcher(push_app)
    with push_app.app_context():
        on_time.claim_and_send()
        assert len(on_time.in_flight) == 1
        two_minutes_ahead = datetime.now(UTC) + timedelta(minutes=2)
        for module in (dispatcher_module, dispatcher_module.push_store):  # this host's clock
            monkeypatch.setattr(module, "utcnow", lambda: two_minutes_ahead, raising=False)
        ahead.claim_and_send()  # the lease has 60 s left, the other reminder 60 s to go
        assert ahead.in_flight == {}
    monkeypatch.undo()
    on_time.run_until_idle()
    for dispatcher in (on_time, ahead):
        dispatcher.close()
    assert [payload["title"] for payload in payloads(service, endpoint)] == ["due"]


def backdate(app, hours: float, *task_ids: int) -> None:
    """Reminders that came due ``hours`` ago, for subscriptions older than that."""
    past = datetime.now(UTC) - timedelta(hours=hours)
    with app.app_context():
        db.session.execute(update(Task).where(Task.id.in_(task_ids)).values(remind_at=past))
        db.session.execute(update(PushSubscription).values(created_at=past - timedelta(hours=1)))
        db.session.commit()


def test_late_reminders_are_sent_up_to_a_day_late_and_older_ones_logged(
    client, push_app, service, log_records
):
    endpoint = subscribe(client, service)
    late = create(client, title="late", remind_at=soon(3600))
    too_late = create(client, title="too late", remind_at=soon(3600))
    backdate(push_app, 23.5, late["id"])
    backdate(push_app, 25, too_late["id"])
    dispatcher = Dispatcher(push_app)
    with push_app.app_context():
        dispatcher.housekeeping()  # what run() does at start and hourly
    dispatcher.run_until_idle()
    dispatcher.close()
    assert [payload["title"] for payload in payloads(service, endpoint)] == ["late"]
    assert outcomes(push_app) == ["late", "sent"]
    warnings = [record.getMessage() for record in log_records if record.levelname == "WARNING"]
    assert warnings == ["1 reminders came due more than 24 h ago while no dispatcher ran: not sent"]


def test_a_subscription_the_push_service_forgot_is_deleted(client, push_app, service):
    gone, missing, fine = (subscribe(client, service) for _ in range(3))
    service.answer(gone, Answer(410))
    service.answer(missing, Answer(404))
    create(client, remind_at=soon())
    time.sleep(0.3)
    dispatch(push_app)
    listed = client.get("/api/alice/push/subscriptions", headers=bearer()).json
    assert [subscription["endpoint"] for subscription in listed] == [fine]
    assert len(payloads(service, fine)) == 1


def test_429_and_5xx_are_retried_after_retry_after_or_a_backoff(client, push_app, service):
    throttled, failing, down = (subscribe(client, service) for _ in range(3))
    service.answer(throttled, Answer(429, {"Retry-After": "1"}))
    service.answer(failing, Answer(500, {"Retry-After": "1"}), Answer(502, {"Retry-After": "1"}))
    service.answer(down, Answer(503))  # no Retry-After: the first backoff, 2 s
    create(client, remind_at=soon())
    time.sleep(0.3)
    dispatch(push_app)
    assert [len(service.received(e)) for e in (throttled, failing, down)] == [0, 0, 0]
    time.sleep(1.1)
    dispatch(push_app)
    assert [len(service.received(e)) for e in (throttled, failing, down)] == [1, 0, 0]
    time.sleep(1.1)
    dispatch(push_app)
    assert [len(service.received(e)) for e in (throttled, failing, down)] == [1, 1, 1]
    assert outcomes(push_app) == ["sent"] * 3


def test_retries_end_with_the_ttl(client, database_url, service, log_records):
    app = build_app(database_url, **push_settings(service, PUSH_TTL_SECONDS=1))
    client = app.test_client()
    endpoint = subscribe(client, service)
    service.answer(endpoint, Answer(500))
    create(client, remind_at=soon())
    time.sleep(0.3)
    dispatch(app)
    assert service.received(endpoint) == []
    assert outcomes(app) == ["expired"]
    assert any("expired: 500" in record.getMessage() for record in log_records)
    dispose(app)


def test_a_hanging_push_service_delays_nobody_else(client, push_app, service):
    hanging = subscribe(client, service)
    others = [subscribe(client, service, user) for user in ("bob", "carol", "dave")]
    service.answer(hanging, Answer(hang=True))
    for user in ("alice", "bob", "carol", "dave"):
        create(client, user, remind_at=soon())
    time.sleep(0.3)
    started = time.monotonic()
    dispatcher = Dispatcher(push_app)
    with push_app.app_context():
        dispatcher.claim_and_send()
    for endpoint in others:
        assert len(service.wait_for(1, 2, endpoint)) == 1
    assert time.monotonic() - started < 0.9  # before the hanging push's 1 s timeout
    dispatcher.run_until_idle()  # the hanging push times out: a retry in 2 s
    service.release()
    service.released.clear()
    time.sleep(2)
    dispatcher.run_until_idle()
    dispatcher.close()
    assert len(service.received(hanging)) == 1


def test_a_push_service_that_trickles_its_answer_holds_a_thread_two_timeouts_at_most(
    client, push_app, service, log_records
):
    """Each byte comes within the 1 s read timeout; the whole push still ends at 2 s."""
    endpoint = subscribe(client, service)
    service.answer(endpoint, Answer(201, body=30, trickle=0.1))  # about 8 s in all
    create(client, remind_at=soon())
    time.sleep(0.3)
    started = time.monotonic()
    dispatch(push_app)
    assert time.monotonic() - started < 3.5
    service.release()  # the stand-in stops trickling to a closed connection anyway
    service.released.clear()
    # To be retried, as a push without an answer, wherever the cut fell (after the
    # status code too: http.client then takes what came for a whole answer).
    assert outcomes(push_app) == ["None"]
    assert "will be retried in 2 s: no whole answer within 2 s" in log_text(log_records)


def test_only_the_first_64_kib_of_an_answer_are_read(client, push_app, service):
    """A body that goes on (here: 1 MiB, then silence) does not keep the push waiting."""
    endpoint = subscribe(client, service)
    service.answer(endpoint, Answer(201, body=1 << 20, length=1 << 30))
    create(client, remind_at=soon())
    time.sleep(0.3)
    started = time.monotonic()
    dispatch(push_app)
    assert time.monotonic() - started < 0.9  # before the 1 s read timeout
    service.release()
    service.released.clear()
    assert outcomes(push_app) == ["sent"]


def log_text(records) -> str:
    return "\n".join(f"{record.getMessage()} {record.__dict__}" for record in records)


def test_redirects_from_the_push_service_are_not_followed(client, push_app, service, log_records):
    redirecting, target = subscribe(client, service), subscribe(client, service, "bob")
    service.answer(redirecting, Answer(307, {"Location": target}))
    service.answer(target, Answer(308, {"Location": "https://169.254.169.254/"}))
    create(client, remind_at=soon())
    create(client, "bob", remind_at=soon())
    time.sleep(0.3)
    arrivals = len(service.arrivals)
    dispatch(push_app)
    assert len(service.arrivals) == arrivals + 2  # one request each, nothing followed
    assert service.received(redirecting) == service.received(target) == []
    assert outcomes(push_app) == ["failed", "failed"]
    assert "307 (redirects are not followed)" in log_text(log_records)


def insert_subscription(app, user_id: str, body: dict) -> None:
    """A subscription row the API would have refused (written straight to the database)."""
    past = datetime.now(UTC) - timedelta(hours=1)
    with app.app_context():
        db.session.add(
            PushSubscription(
                user_id=user_id,
                endpoint=body["endpoint"],
                p256dh=body["keys"]["p256dh"],
                auth=body["keys"]["auth"],
                created_at=past,
                updated_at=past,
            )
        )
        db.session.commit()


def test_the_rules_are_checked_again_when_sending(client, push_app, database_url, service):
    valid = subscribe(client, service)
    planted = service.subscribe()
    port = service.origin.rsplit(":", 1)[1]
    for endpoint in (
        "https://169.254.169.254/latest/meta-data",
        f"https://localhost:{port}/push/x",
        "http://127.0.0.1/push/x",
    ):
        insert_subscription(push_app, "alice", planted | {"endpoint": endpoint})
    create(client, remind_at=soon())
    time.sleep(0.3)
    arrivals = len(service.arrivals)
    dispatch(push_app)
    assert len(service.arrivals) == arrivals + 1
    assert len(service.received(valid)) == 1
    assert outcomes(push_app) == ["refused", "refused", "refused", "sent"]

    # The setting narrowed since: nothing goes to the hosts it no longer lists.
    narrowed = build_app(
        database_url, **push_settings(service, PUSH_SERVICE_HOSTS="fcm.googleapis.com")
    )
    create(client, remind_at=soon())
    time.sleep(0.3)
    dispatch(narrowed)
    assert len(service.arrivals) == arrivals + 1
    dispose(narrowed)


def test_a_host_name_that_leads_to_a_private_address_is_not_contacted(
    client, database_url, service
):
    port = service.origin.rsplit(":", 1)[1]
    app = build_app(database_url, **push_settings(service, PUSH_SERVICE_HOSTS=f"localhost:{port}"))
    client = app.test_client()
    body = service.subscribe()
    body["endpoint"] = body["endpoint"].replace("127.0.0.1", "localhost")
    assert (
        client.post("/api/alice/push/subscriptions", json=body, headers=bearer()).status_code == 201
    )
    create(client, remind_at=soon())
    time.sleep(0.3)
    arrivals = len(service.arrivals)
    dispatch(app)
    assert len(service.arrivals) == arrivals  # localhost is loopback: refused before any byte
    assert outcomes(app) == ["refused"]
    dispose(app)


def test_the_push_service_must_have_a_certificate_the_ca_file_trusts(client, database_url, service):
    system_store = "/etc/ssl/certs/ca-certificates.crt"  # does not know the test CA
    app = build_app(database_url, **push_settings(service, PUSH_CA_BUNDLE=system_store))
    client = app.test_client()
    endpoint = subscribe(client, service)
    create(client, remind_at=soon())
    time.sleep(0.3)
    arrivals = len(service.arrivals)
    dispatch(app)
    assert len(service.arrivals) == arrivals and service.received(endpoint) == []
    assert outcomes(app) == ["None"]  # waiting for a retry (SSLError), not sent
    dispose(app)


def test_no_endpoint_key_or_payload_in_any_log_line(client, push_app, service, log_records):
    bodies = [service.subscribe() for _ in range(4)]
    for body in bodies:
        client.post("/api/alice/push/subscriptions", json=body, headers=bearer())
    service.answer(bodies[0]["endpoint"], Answer(410))
    service.answer(bodies[1]["endpoint"], Answer(500))
    service.answer(bodies[2]["endpoint"], Answer(307, {"Location": bodies[3]["endpoint"]}))
    task = create(client, title="Call the dentist about the crown", remind_at=soon())
    time.sleep(0.3)
    dispatch(push_app)
    logged = log_text(log_records)
    assert "retried" in logged and "failed" in logged and "ended" in logged
    secrets = [task["title"], f"/tasks/{task['id']}"]
    for body in bodies:
        secrets += [
            body["endpoint"].rsplit("/", 1)[1],
            body["keys"]["p256dh"],
            body["keys"]["auth"],
        ]
    assert [secret for secret in secrets if secret in logged] == []
