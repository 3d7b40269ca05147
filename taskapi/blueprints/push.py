"""Web Push endpoints (contract 4.10): the server's VAPID key, and each user's subscriptions.

What a subscription is for, sending reminders, happens in another process
(``flask --app taskapi send-reminders``, taskapi.push.dispatcher).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

from ..auth.decorators import user_view
from ..data import push_store
from ..data.models import PUSH_SUBSCRIPTIONS_PER_USER_MAX
from ..http.arguments import arguments
from ..http.openapi import documented, success
from ..http.responses import no_content
from ..schemas.push import PushSubscriptionSchema, subscription_json

key_bp = Blueprint("push_key", __name__, url_prefix="/api/push")
bp = Blueprint("push", __name__, url_prefix="/api/<user_id>/push/subscriptions")


@key_bp.get("/key")
@documented(responses={200: success("PushKey")}, errors=(404,))
def public_key():
    """Get the VAPID public key, for pushManager.subscribe's applicationServerKey.

    404 when the server has no VAPID key configured (no reminders are pushed).
    """
    key = current_app.config.get("VAPID_PUBLIC_KEY")
    if not key:
        abort(404, "Web Push is not configured on this server.")
    return jsonify({"public_key": key})


@bp.post("")
@documented(
    responses={
        201: success("Subscription", description="Subscribed"),
        200: success("Subscription", description="Known endpoint: keys updated"),
    },
    errors=(409,),
)
@user_view
@arguments(PushSubscriptionSchema)
def subscribe(user_id: str, body: dict):
    """Save a browser's push subscription (PushSubscription.toJSON()).

    The same endpoint again updates its keys (200); an endpoint saved by
    another user moves to this one. At most 20 per user (409).
    """
    saved = push_store.save_subscription(
        user_id,
        body["endpoint"],
        body["keys"]["p256dh"],
        body["keys"]["auth"],
        body["expiration_time"],
    )
    if saved is None:
        abort(
            409,
            f"At most {PUSH_SUBSCRIPTIONS_PER_USER_MAX} push subscriptions per user: "
            "delete one first.",
        )
    row, created = saved
    response = jsonify(subscription_json(row))
    response.status_code = 201 if created else 200
    return response


@bp.get("")
@documented(responses={200: success({"type": "array", "items": "Subscription"})})
@user_view
def list_subscriptions(user_id: str):
    """List the user's push subscriptions (without their keys)."""
    return jsonify([subscription_json(row) for row in push_store.list_subscriptions(user_id)])


@bp.delete("/<int:subscription_id>")
@documented(responses={204: success(description="Unsubscribed")}, errors=(404,))
@user_view
def unsubscribe(user_id: str, subscription_id: int):
    """Delete a push subscription: its browser gets no more reminders."""
    if not push_store.delete_subscription(user_id, subscription_id):
        abort(404, "No such push subscription.")
    return no_content()
