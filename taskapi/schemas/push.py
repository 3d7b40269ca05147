"""Web Push schemas (contract 4.10): a browser's ``PushSubscription.toJSON()``, and
what the API shows of a subscription (never its keys)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields

from ..config import b64url_decode, b64url_encode
from ..data.models import PUSH_ENDPOINT_MAX_LENGTH
from ..push.endpoints import endpoint_problem
from .fields import UTCDateTime, rfc3339

P256DH_BYTES = 65  # an uncompressed P-256 point
AUTH_BYTES = 16


class Base64urlKey(fields.String):
    """A key as base64url (padded or not), returned unpadded; ``check`` validates its bytes."""

    def __init__(self, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            raw = b64url_decode(text)
        except ValueError:
            raise ValidationError("Must be base64url (A-Z, a-z, 0-9, - and _).") from None
        self.check(raw)
        return b64url_encode(raw)


def check_p256dh(raw: bytes) -> None:
    if len(raw) != P256DH_BYTES or raw[0] != 4:
        raise ValidationError("Must be an uncompressed P-256 public key (65 bytes).")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise ValidationError("Must be a point on the P-256 curve.") from None


def check_auth(raw: bytes) -> None:
    if len(raw) != AUTH_BYTES:
        raise ValidationError(f"Must be {AUTH_BYTES} bytes.")


class Endpoint(fields.String):
    """The push service's URL for the subscription: checked against PUSH_SERVICE_HOSTS."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        endpoint = super()._deserialize(value, attr, data, **kwargs)
        problem = endpoint_problem(endpoint, current_app.config["PUSH_SERVICES"])
        if problem:
            raise ValidationError(problem)
        return endpoint


class ExpirationTime(fields.Field):
    """``expirationTime``: null, or milliseconds since the epoch (a DOMHighResTimeStamp)."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be null or a number of milliseconds since 1970.")
        try:
            if not math.isfinite(value) or value < 0:
                raise ValueError
            return datetime.fromtimestamp(value / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            raise ValidationError("Must be a time in milliseconds between 1970 and 9999.") from None


class PushKeysSchema(Schema):
    p256dh = Base64urlKey(check_p256dh, required=True)
    auth = Base64urlKey(check_auth, required=True)

    class Meta:
        unknown = RAISE


class PushSubscriptionSchema(Schema):
    """The body of ``POST /api/{user_id}/push/subscriptions``: ``PushSubscription.toJSON()``."""

    endpoint = Endpoint(
        required=True,
        metadata={
            "description": "The push service's URL: https:// on a host of PUSH_SERVICE_HOSTS.",
            "maxLength": PUSH_ENDPOINT_MAX_LENGTH,
            "example": "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91b...",
        },
    )
    keys = fields.Nested(PushKeysSchema, required=True)
    expiration_time = ExpirationTime(
        data_key="expirationTime",
        load_default=None,
        allow_none=True,
        metadata={"type": "number", "nullable": True, "description": "Milliseconds since 1970."},
    )

    class Meta:
        unknown = RAISE


class SubscriptionSchema(Schema):
    """A push subscription as the API shows it: never its keys."""

    id = fields.Integer(metadata={"example": 3})
    endpoint = fields.String()
    created_at = UTCDateTime()


class PushKeySchema(Schema):
    public_key = fields.String(
        metadata={"description": "The VAPID public key: an uncompressed P-256 point, base64url."}
    )


def subscription_json(row) -> dict:
    return {"id": row["id"], "endpoint": row["endpoint"], "created_at": rfc3339(row["created_at"])}
