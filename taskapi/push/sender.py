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
  ``PUSH_TIMEOUT_SECONDS`` to connect and as long for each read, and twice
  that for the whole push, however slowly the answer trickles in; it reads
  at most 64 KiB of the answer's body.

What comes back is an ``Outcome``; nothing here logs, and no outcome carries
an endpoint, a key or a payload (they are capability URLs and secrets).
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
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
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError

from .endpoints import endpoint_problem, peer_allowed

# A VAPID token's lifetime (RFC 8292 allows 24 hours at most).
VAPID_LIFETIME_SECONDS = 12 * 3600
# A Retry-After beyond this is read as this (a retry still happens within the TTL).
RETRY_AFTER_MAX_SECONDS = 3600
SENT = (200, 201, 202)
GONE = (404, 410)
# Push services answer with a few bytes; what comes beyond this is not read.
ANSWER_MAX_BYTES = 64 * 1024
# The push this thread is sending: its Deadline (see ``watch``).
pushing = threading.local()


class Outcome(NamedTuple):
    """What became of a push: ``sent``, ``gone`` (the subscription ended), ``retry``
    (429, 5xx, timeout, connection failure), ``failed`` or ``refused`` (the
    endpoint rule). ``detail`` is for the log: a status or an error's class."""

    kind: str
    detail: str
    retry_after: float | None = None


class PeerRefused(NewConnectionError):
    """The host name led to an address that is not public."""


class Deadline:
    """Ends a push that runs past ``seconds``, whatever the push service does.

    Timeouts bound each read, so an answer trickled a byte at a time never
    meets one; at the deadline a timer shuts the connection's socket down,
    which wakes whatever read, or TLS handshake, is waiting on it.
    """

    def __init__(self, seconds: float):
        self.passed = False  # it cut the push short
        self.answered = False  # the whole answer came first
        self.connection: CheckedHTTPSConnection | None = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True

    def __enter__(self) -> Deadline:
        pushing.deadline = self
        self.timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.timer.cancel()
        pushing.deadline = None
        with self.lock:
            self.connection = None  # kept by the pool for the next push: not ours to shut

    def expire(self) -> None:
        with self.lock:
            if self.answered:
                return  # too late to cut anything: the push has its answer
            self.passed = True
            if self.connection is not None:
                self.connection.shut()

    def answer_read(self) -> None:
        with self.lock:
            self.answered = True
            self.connection = None

    def watch(self, connection: CheckedHTTPSConnection) -> None:
        with self.lock:
            self.connection = connection
            if self.passed:
                connection.shut()


def answer_read() -> None:
    """The current push has its whole answer: its deadline no longer counts."""
    deadline = getattr(pushing, "deadline", None)
    if deadline is not None:
        deadline.answer_read()


def watch(connection: CheckedHTTPSConnection) -> None:
    """The connection the current push goes over: its deadline shuts it."""
    deadline = getattr(pushing, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


class CheckedHTTPSConnection(HTTPSConnection):
    handle: socket.socket | None = None

    def _new_conn(self):
        sock = super()._new_conn()
        if not peer_allowed(self.host, sock.getpeername()[0]):
            sock.close()
            raise PeerRefused(self, "the push service's address is not public")
        # A second descriptor of the socket, which the TLS socket wrapped around it
        # does not own: shutting it down from another thread ends any read on it.
        self.handle = sock.dup()
        watch(self)
        return sock

    def shut(self) -> None:
        handle = self.handle  # once: close() on the sending thread may clear it meanwhile
        if handle is not None:
            with contextlib.suppress(OSError):  # closed already
                handle.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        super().close()
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = CheckedHTTPSConnection

    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)
        watch(connection)  # a kept-alive one, or one _new_conn is about to connect
        return connection


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
        kwargs["stream"] = True  # the body is read below, ANSWER_MAX_BYTES of it at most
        response = super().request(*args, **kwargs)
        try:
            body = response.raw.read(ANSWER_MAX_BYTES + 1, decode_content=False)
        except ReadTimeoutError as error:
            response.close()
            raise requests.ReadTimeout(error, response=response) from None
        except (HTTPError, OSError) as error:
            response.close()
            raise requests.ConnectionError(error, response=response) from None
        answer_read()
        if len(body) > ANSWER_MAX_BYTES:
            response.close()  # not worth reading to its end: the connection goes
        response._content = body[:ANSWER_MAX_BYTES]  # what pywebpush reads as .text
        return response


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
        self.deadline = 2 * self.timeout  # the whole push: connect, send, the answer
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
        deadline = Deadline(self.deadline)
        try:
            with deadline:
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
        except requests.RequestException as error:
            if not deadline.passed:
                return self.outcome_of_error(error)
        # Cut short, even if what came looks like an answer (a status line cut off
        # after its code, then the end of the connection): as good as none. The
        # deadline counts only until the whole answer is in (answer_read), so one
        # that came whole is never retried, which would send the reminder twice.
        if deadline.passed:
            return Outcome("retry", f"no whole answer within {self.deadline:g} s")
        return outcome_of(response)

    def outcome_of_error(self, error: requests.RequestException) -> Outcome:
        if isinstance(error, requests.Timeout):
            return Outcome("retry", f"no answer within {self.timeout:g} s")
        if isinstance(error, requests.ConnectionError):
            if isinstance(cause_of(error), PeerRefused):
                return Outcome("refused", "the push service's address is not public")
            return Outcome("retry", f"connection failed ({connection_problem(error)})")
        return Outcome("failed", type(error).__name__)


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
