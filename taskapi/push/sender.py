"""Sending one push (RFC 8030) with pywebpush: encrypted for the browser (RFC 8291,
``aes128gcm``), signed with the server's VAPID key (RFC 8292).

Only the dispatcher process imports this module (pywebpush brings requests
and aiohttp, which web workers do without). Each push:

- is refused unless its endpoint passes the rule again (taskapi.push.endpoints);
- goes over HTTPS verified against the configured CA file (the system
  store, or ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``), never through a
  proxy or with credentials from the environment;
- connects only where the rule allows: a host name must reach a public
  address (``peer_allowed``), so DNS cannot send it into the private network;
- never follows a redirect (a 3xx is a failed push), and waits at most
  ``PUSH_TIMEOUT_SECONDS`` to connect and as long for each read.

What comes back is an ``Outcome``; nothing here logs, and no outcome carries
an endpoint, a key or a payload (they are capability URLs and secrets).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .endpoints import endpoint_problem, peer_allowed

# A VAPID token's lifetime (RFC 8292 allows 24 hours at most).
VAPID_LIFETIME_SECONDS = 12 * 3600
# A Retry-After beyond this is read as this (a retry still happens within the TTL).
RETRY_AFTER_MAX_SECONDS = 3600
SENT = (200, 201, 202)
GONE = (404, 410)


class Outcome(NamedTuple):
    """What became of a push: ``sent``, ``gone`` (the subscription ended), ``retry``
    (429, 5xx, timeout, connection failure), ``failed`` or ``refused`` (the
    endpoint rule). ``detail`` is for the log: a status or an error's class."""

    kind: str
    detail: str
    retry_after: float | None = None


class PeerRefused(NewConnectionError):
    """The host name led to an address that is not public."""


class CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        if not peer_allowed(self.host, sock.getpeername()[0]):
            sock.close()
            raise PeerRefused(self, "the push service's address is not public")
        return sock


class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": CheckedHTTPSConnectionPool}


class PlainHTTPRefused(BaseAdapter):
    def send(self, request, **kwargs):
        raise requests.exceptions.InvalidSchema("pushes go over https only")

    def close(self):
        pass


class NoRedirectSession(requests.Session):
    def request(self, *args, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(*args, **kwargs)


def new_session(ca_file: str) -> requests.Session:
    session = NoRedirectSession()
    session.trust_env = False  # no proxy, .netrc or CA bundle from the environment here
    session.verify = ca_file
    session.mount("https://", CheckedAdapter())
    session.mount("http://", PlainHTTPRefused())
    return session


class Sender:
    """Sends pushes from any number of threads (a requests session per thread)."""

    def __init__(self, config: Mapping):
        self.vapid = Vapid.from_raw(config["VAPID_PRIVATE_KEY"].encode())
        self.subject = config["VAPID_SUBJECT"]
        self.hosts = config["PUSH_SERVICES"]
        self.timeout = config["PUSH_TIMEOUT_SECONDS"]
        self.ca_file = config["PUSH_CA_BUNDLE"]
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = new_session(self.ca_file)
        return self.local.session

    def send(self, endpoint: str, p256dh: str, auth: str, payload: str, ttl: int) -> Outcome:
        if endpoint_problem(endpoint, self.hosts):
            return Outcome("refused", "the endpoint is not on a push service's host")
        claims = {
            "sub": self.subject,
            "aud": audience(endpoint),
            "exp": int(time.time()) + VAPID_LIFETIME_SECONDS,
        }
        try:
            response = webpush(
                {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims=claims,
                ttl=ttl,
                headers={"Urgency": "high"},
                timeout=self.timeout,
                requests_session=self.session(),
            )
        except WebPushException as error:
            if error.response is None:
                return Outcome("failed", "pywebpush refused the subscription")
            response = error.response
        except requests.Timeout:
            return Outcome("retry", f"no answer within {self.timeout:g} s")
        except requests.ConnectionError as error:
            if isinstance(cause_of(error), PeerRefused):
                return Outcome("refused", "the push service's address is not public")
            return Outcome("retry", f"connection failed ({connection_problem(error)})")
        except requests.RequestException as error:
            return Outcome("failed", type(error).__name__)
        return outcome_of(response)


def audience(endpoint: str) -> str:
    """The VAPID ``aud`` (RFC 8292 section 2): the endpoint's origin as RFC 6454
    writes it, with the host in lower case and no port 443; never a path."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = "" if parts.port in (None, 443) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def outcome_of(response: requests.Response) -> Outcome:
    status = response.status_code
    if status in SENT:
        return Outcome("sent", str(status))
    if status in GONE:
        return Outcome("gone", str(status))
    if status == 429 or status >= 500:
        return Outcome("retry", str(status), retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        return Outcome("failed", f"{status} (redirects are not followed)")
    return Outcome("failed", str(status))


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def cause_of(error: requests.ConnectionError) -> BaseException | None:
    """What urllib3 found beneath a connection error (its MaxRetryError's reason)."""
    return getattr(error.args[0] if error.args else None, "reason", None)


def connection_problem(error: requests.ConnectionError) -> str:
    """The class of what failed beneath (an SSL error, a refused connection): never the
    message, which quotes the URL."""
    return type(cause_of(error) or error).__name__
