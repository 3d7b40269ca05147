"""``user_view``: the one decorator every per-user view (``/api/<user_id>/...``) wears."""

from __future__ import annotations

from functools import wraps

from .limits import count_user_call, too_many_requests
from .tokens import authorize
from .users import run_with_user_row


def user_view(view):
    """Run ``view`` for the user the URL names, once the request has earned it.

    In this order:

    1. the token: 404 for a URL user id no token could carry, 401 for a
       missing or invalid token, 403 when it is another user's
       (``taskapi.auth.tokens.authorize``);
    2. the user's rate limit: 429 with ``Retry-After`` (``count_user_call``);
    3. the user's row, made the first time this process sees the user
       (``ensure_user``);
    4. the view, with ``user_id``; ``get_jwt()`` gives the token's claims.

    The view may run twice: when it trips over a user row an operator deleted
    while this process remembered it (an IntegrityError), the session is
    rolled back, the row made again and the view run once more
    (``run_with_user_row``). A view must leave nothing behind but its
    database writes, which the rollback undoes.
    """

    @wraps(view)
    def wrapper(*args, user_id: str, **kwargs):
        claims = authorize(user_id)
        retry_after = count_user_call(user_id)
        if retry_after is not None:
            return too_many_requests(retry_after)
        return run_with_user_row(user_id, claims, lambda: view(*args, user_id=user_id, **kwargs))

    wrapper.requires_token = True  # the OpenAPI document marks such views as secured
    return wrapper
