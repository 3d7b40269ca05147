"""Answers more than one blueprint gives: a task with its ETag, 204, a page of a list."""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import RowMapping

from ..data.keyset import Page
from ..schemas.tasks import task_json
from .cursors import Listing, encode_cursor
from .etags import etag_of
from .routing import link_url


def task_response(task: RowMapping, status: int = 200, **headers: str) -> Response:
    response = jsonify(task_json(task))
    response.status_code = status
    response.set_etag(etag_of(task))
    response.headers.update(headers)
    return response


def no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # there is no body to describe
    return response


def page_response(
    items: list, page: Page, listing: Listing, endpoint: str, **link_args
) -> Response:
    """``items`` with ``X-Total-Count``, and a ``Link`` to the next page: ``endpoint``
    with ``link_args`` and the cursor."""
    response = jsonify(items)
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_position:
        cursor = encode_cursor(listing, page.next_position)
        response.headers["Link"] = f'<{link_url(endpoint, **link_args, cursor=cursor)}>; rel="next"'
    return response
