"""Push subscriptions and the VAPID key through HTTP (contract 4.10): what a frontend
sends (PushSubscription.toJSON()) and sees, and every endpoint the server must refuse."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from taskapi.config import generate_vapid_private_key, public_key_of
from taskapi.data.models import PushSubscription
from taskapi.extensions import db

from ..helpers import FCM_ENDPOINT, bearer, push_subscription

URL = "/api/alice/push/subscriptions"
PROBLEM = "application/problem+json"


def subscribe(client, body: dict, user: str = "alice"):
    return client.post(f"/api/{user}/push/subscriptions", json=body, headers=bearer(user))


def endpoints(client, user: str = "alice") -> list[str]:
    response = client.get(f"/api/{user}/push/subscriptions", headers=bearer(user))
    assert response.status_code == 200
    return [subscription["endpoint"] for subscription in response.json]


def stored_keys(app, endpoint: str) -> tuple[str, str]:
    with app.app_context():
        row = db.session.execute(
            select(PushSubscription.p256dh, PushSubscription.auth).where(
                PushSubscription.endpoint == endpoint
            )
        ).one()
        db.session.commit()
    return tuple(row)


def test_the_key_is_served_without_a_token(database_url, make_app):
    private_key = generate_vapid_private_key()
    client = make_app(database_url, VAPID_PRIVATE_KEY=private_key).test_client()
    response = client.get("/api/push/key")
    assert response.status_code == 200
    assert response.json == {"public_key": public_key_of(private_key)}
    point = base64.urlsafe_b64decode(response.json["public_key"] + "=")
    assert len(point) == 65 and point[0] == 4  # what pushManager.subscribe takes


def test_without_vapid_the_key_is_404(client):
    response = client.get("/api/push/key")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    assert "not configured" in response.json["detail"]


def test_subscribe_update_list_and_delete(app, client):
    body = push_subscription()
    created = subscribe(client, body)
    assert created.status_code == 201
    assert set(created.json) == {"id", "endpoint", "created_at"}
    assert created.json["endpoint"] == FCM_ENDPOINT
    text = created.get_data(as_text=True)
    assert body["keys"]["p256dh"] not in text and body["keys"]["auth"] not in text

    # The browser's keys changed (pushsubscriptionchange): same endpoint, same row.
    renewed = push_subscription() | {"expirationTime": 1893456000000}
    again = subscribe(client, renewed)
    assert again.status_code == 200
    assert again.json == created.json
    assert stored_keys(app, FCM_ENDPOINT) == (renewed["keys"]["p256dh"], renewed["keys"]["auth"])

    listed = client.get(URL, headers=bearer())
    assert listed.json == [created.json]
    assert body["keys"]["auth"] not in listed.get_data(as_text=True)

    deleted = client.delete(f"{URL}/{created.json['id']}", headers=bearer())
    assert deleted.status_code == 204
    assert deleted.get_data() == b""
    assert client.delete(f"{URL}/{created.json['id']}", headers=bearer()).status_code == 404
    assert endpoints(client) == []


def test_an_endpoint_sent_by_another_user_moves_to_them(client):
    alices = subscribe(client, push_subscription()).json
    bobs = subscribe(client, push_subscription(), user="bob")
    assert bobs.status_code == 201  # new to bob
    assert endpoints(client) == []
    assert endpoints(client, "bob") == [FCM_ENDPOINT]
    # Alice can no longer see or delete it.
    assert client.delete(f"{URL}/{alices['id']}", headers=bearer()).status_code == 404
    assert endpoints(client, "bob") == [FCM_ENDPOINT]


def test_at_most_twenty_per_user(client):
    bodies = [push_subscription(f"{FCM_ENDPOINT}-{n}") for n in range(21)]
    for body in bodies[:20]:
        assert subscribe(client, body).status_code == 201
    refused = subscribe(client, bodies[20])
    assert refused.status_code == 409
    assert refused.mimetype == PROBLEM
    assert "20" in refused.json["detail"]
    assert subscribe(client, bodies[0]).status_code == 200  # updating one is not adding one
    assert subscribe(client, bodies[20], user="bob").status_code == 201  # bob has his own 20
    first = client.get(URL, headers=bearer()).json[0]
    client.delete(f"{URL}/{first['id']}", headers=bearer())
    assert subscribe(client, push_subscription(f"{FCM_ENDPOINT}-new")).status_code == 201


def test_twenty_holds_under_concurrent_requests(app):
    bodies = [push_subscription(f"{FCM_ENDPOINT}-{n}") for n in range(26)]
    subscribe(app.test_client(), bodies[0])  # the user's row exists before the race

    def post(body):
        return subscribe(app.test_client(), body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, bodies[1:]))
    assert sorted(statuses) == [201] * 19 + [409] * 6
    assert len(endpoints(app.test_client())) == 20


ACCEPTED = [
    "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
    "https://web.push.apple.com/QGuQyavXutnMdtyWjBrAO",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD%2bJ",
    "https://fcm.googleapis.com:443/fcm/send/x",
]


@pytest.mark.parametrize("endpoint", ACCEPTED)
def test_browser_push_services_are_accepted(client, endpoint):
    assert subscribe(client, push_subscription(endpoint)).status_code == 201


REFUSED = {
    "plain http": "http://fcm.googleapis.com/fcm/send/x",
    "another host": "https://attacker.example/collect",
    "suffix trick": "https://fcm.googleapis.com.evil.test/x",
    "no label boundary": "https://evilfcm.googleapis.com/x",
    "parent domain": "https://googleapis.com/x",
    "userinfo": "https://user:pw@fcm.googleapis.com/x",
    "userinfo as host": "https://fcm.googleapis.com@evil.test/x",
    "backslash": "https://fcm.googleapis.com\\@evil.test/x",
    "fragment": "https://evil.test#fcm.googleapis.com",
    "link-local metadata": "https://169.254.169.254/latest/meta-data/",
    "private": "https://10.0.0.8/push",
    "private 192.168": "https://192.168.1.1/push",
    "loopback": "https://127.0.0.1/push",
    "loopback v6": "https://[::1]/push",
    "unique local v6": "https://[fd00::1]/push",
    "decimal address": "https://2130706433/push",
    "hex address": "https://0x7f000001/push",
    "short address": "https://127.1/push",
    "localhost": "https://localhost/push",
    "another port": "https://fcm.googleapis.com:22/x",
    "bad port": "https://fcm.googleapis.com:99999/x",
    "trailing dot": "https://fcm.googleapis.com./x",
    "percent in host": "https://fcm%2Egoogleapis.com/x",
    "space": "https://fcm.googleapis.com/x y",
    "newline": "https://fcm.googleapis.com/x\n",
    "no host": "https:///fcm.googleapis.com/x",
    "other scheme": "file:///etc/passwd",
    "javascript": "javascript:alert(1)",
    "empty": "",
    "too long": "https://fcm.googleapis.com/" + "x" * 2048,
    "non-ascii host": "https://fcm.googleapis.cöm/x",
}


@pytest.mark.parametrize("endpoint", REFUSED.values(), ids=REFUSED)
def test_endpoints_off_the_push_services_are_400(client, endpoint):
    response = subscribe(client, push_subscription(endpoint))
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert list(response.json["errors"]) == ["endpoint"]
    assert endpoints(client) == []


MALFORMED = {
    "text after a bracketed host": "https://[::1]x/push",
    "text after a bracketed host and a port": "https://[::1]x:4443/push",
    "two closing brackets": "https://[::1]]/push",
    "zone id": "https://[::1%25lo]/push",
    "unclosed bracket": "https://[::1/push",
    "port 0": "https://127.0.0.1:0/push",
    "empty port": "https://127.0.0.1:/push",
    "port with a leading zero": "https://127.0.0.1:04443/push",
    "port out of range": "https://127.0.0.1:65536/push",
    "signed port": "https://127.0.0.1:+443/push",
    "userinfo before a listed address": "https://a@127.0.0.1/push",
    "backslash": "https://127.0.0.1\\@fcm.googleapis.com/push",
    "tab": "https://127.0.0.1\t/push",
    "full-width dot": "https://fcm\uff0egoogleapis.com/x",
    "punycode of another name": "https://xn--fcm-googleapis-com.evil.test/x",
}


@pytest.mark.parametrize("endpoint", MALFORMED.values(), ids=MALFORMED)
def test_malformed_endpoints_are_400_even_around_listed_addresses(
    app, database_url, make_app, endpoint
):
    client = make_app(
        database_url, PUSH_SERVICE_HOSTS="fcm.googleapis.com, 127.0.0.1, [::1]"
    ).test_client()
    response = subscribe(client, push_subscription(endpoint))
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert list(response.json["errors"]) == ["endpoint"]
    assert endpoints(client) == []


def key_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


GOOD = push_subscription()["keys"]
POINT = base64.urlsafe_b64decode(GOOD["p256dh"] + "=")
BAD_KEYS = {
    "p256dh not on the curve": (
        {"p256dh": key_text(POINT[:-1] + bytes([POINT[-1] ^ 1]))},
        "p256dh",
    ),
    "p256dh compressed": ({"p256dh": key_text(b"\x02" + POINT[1:33])}, "p256dh"),
    "p256dh short": ({"p256dh": key_text(POINT[:64])}, "p256dh"),
    "p256dh standard base64": ({"p256dh": base64.b64encode(POINT).decode()}, "p256dh"),
    "p256dh junk": ({"p256dh": "not a key!"}, "p256dh"),
    "p256dh number": ({"p256dh": 12}, "p256dh"),
    "auth 15 bytes": ({"auth": key_text(b"a" * 15)}, "auth"),
    "auth 17 bytes": ({"auth": key_text(b"a" * 17)}, "auth"),
    "auth NUL": ({"auth": "AAAA\x00AAAAAAAAAAAAAAAAAA"}, "auth"),
    "auth null": ({"auth": None}, "auth"),
}


@pytest.mark.parametrize(("keys", "field"), BAD_KEYS.values(), ids=BAD_KEYS)
def test_bad_keys_are_400(client, keys, field):
    body = push_subscription() | {"keys": GOOD | keys}
    response = subscribe(client, body)
    assert response.status_code == 400
    # Flat, as every 400's errors (docs/api.md): a nested field is named by its path.
    messages = response.json["errors"][f"keys.{field}"]
    assert response.json["errors"] == {f"keys.{field}": messages}
    assert all(isinstance(message, str) for message in messages)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"keys": None}, "keys"),
        ({"keys": "p256dh"}, "keys"),
        ({"keys": [GOOD]}, "keys"),
        ({"keys": {"p256dh": GOOD["p256dh"]}}, "keys"),
        ({"keys": GOOD | {"extra": "x"}}, "keys"),
        ({"endpoint": None}, "endpoint"),
        ({"endpoint": 7}, "endpoint"),
        ({"expirationTime": "tomorrow"}, "expirationTime"),
        ({"expirationTime": True}, "expirationTime"),
        ({"expirationTime": -1}, "expirationTime"),
        ({"expirationTime": 1e300}, "expirationTime"),
        ({"options": {}}, "options"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client, change, field):
    response = subscribe(client, push_subscription() | change)
    assert response.status_code == 400, response.json
    assert [name for name in response.json["errors"] if name.split(".")[0] == field]
    assert all(isinstance(messages, list) for messages in response.json["errors"].values())


def test_padded_keys_and_an_expiration_time_are_fine(client):
    body = push_subscription()
    body["keys"] = {name: value + "=" * (-len(value) % 4) for name, value in body["keys"].items()}
    body["expirationTime"] = 1893456000000.5
    assert subscribe(client, body).status_code == 201


def test_not_json_is_415_and_ids_beyond_range_are_404(client):
    response = client.post(URL, data=json.dumps(push_subscription()), headers=bearer())
    assert response.status_code == 415
    for subscription_id in ("9999999999", "0", "-1", "x", "\uff11"):
        assert client.delete(f"{URL}/{subscription_id}", headers=bearer()).status_code == 404


def test_endpoints_and_keys_never_reach_the_log(client, log_records):
    body = push_subscription()
    subscribe(client, body)
    subscribe(client, push_subscription("https://169.254.169.254/x"))
    client.get(URL, headers=bearer())
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in log_records)
    assert "POST /api/alice/push/subscriptions" in logged
    for secret in (FCM_ENDPOINT, "169.254.169.254", body["keys"]["p256dh"], body["keys"]["auth"]):
        assert secret not in logged
