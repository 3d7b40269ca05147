"""Which push endpoints the server may ever contact: the rule against SSRF.

A subscription's endpoint comes from a browser, so from whoever holds a
token: the server must never send a request to an address a user chose.
An endpoint is accepted only when it is ``https://`` on a push service's
host: equal to an entry of ``PUSH_SERVICE_HOSTS`` or a subdomain of it at a
label boundary (``fcm.googleapis.com`` admits ``x.fcm.googleapis.com``,
never ``evilfcm.googleapis.com`` nor ``fcm.googleapis.com.evil.test``).
No user information (``user@host``), no IP literal unless an entry names
that address, no fragment, nothing outside RFC 3986's characters. An entry
that is a host name admits port 443 only unless it names a port
(``push.example.com:8443``); an entry that is an IP address (a stand-in
service on loopback, for tests and development) admits any port of it.

The subscription schema checks an endpoint with ``endpoint_problem`` when it
is stored, and the sender checks it again before every push (the setting
may have narrowed since); the sender also refuses to connect to an address
that is not public when the host is a name (``peer_allowed``), so a listed
domain's DNS cannot point pushes into the private network.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

DEFAULT_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",  # Chrome, Edge, Opera, Samsung Internet
    "push.services.mozilla.com",  # Firefox
    "notify.windows.com",  # Edge's legacy WNS endpoints
    "push.apple.com",  # Safari
)
ENDPOINT_MAX_LENGTH = 2048
DEFAULT_HTTPS_PORT = 443
# RFC 3986's unreserved, reserved and percent characters: nothing else is part of a URL.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+")
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
HOST_NAME_MAX_LENGTH = 253

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PushHost(NamedTuple):
    """One entry of ``PUSH_SERVICE_HOSTS``: a host name or an IP address, and a port or None."""

    host: str
    address: IPAddress | None  # set when the entry is an IP literal
    port: int | None

    def admits(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.address is not None:
            return host_address(host) == self.address  # any port of a listed address
        if self.port is None and port != DEFAULT_HTTPS_PORT:
            return False
        return host == self.host or host.endswith("." + self.host)


def parse_push_hosts(raw: str) -> tuple[PushHost, ...]:
    """``PUSH_SERVICE_HOSTS``: comma-separated host names or IP addresses, each
    with an optional ``:port``. ValueError names an entry that is neither."""
    entries = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, port = split_port(item.lower())
        address = host_address(host)
        if address is None and not is_host_name(host):
            raise ValueError(
                f"PUSH_SERVICE_HOSTS entry {item!r} is not a host name or an IP address "
                "(write fcm.googleapis.com, push.example.com:8443 or 127.0.0.1)."
            )
        entries.append(PushHost(host, address, port))
    if not entries:
        raise ValueError("PUSH_SERVICE_HOSTS names no host.")
    return tuple(entries)


def split_port(item: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``host``, ``v6``: the host and the port (or None)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return item, None  # fails the checks that follow
        port = rest[1:]
    elif item.count(":") == 1:
        host, port = item.split(":")
    else:
        return item, None  # a host name, or a bare IPv6 address
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"PUSH_SERVICE_HOSTS entry {item!r} has no valid port.")
    return host, int(port)


def host_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_host_name(host: str) -> bool:
    """Letters, digits and hyphens in dot-separated labels, ending in a name (not a number)."""
    if not host or len(host) > HOST_NAME_MAX_LENGTH or not host.isascii():
        return False
    labels = host.split(".")
    # A last label of digits (or 0x...) is how inet_aton spells an address: 127.1, 0x7f.1.
    return all(LABEL.fullmatch(label) for label in labels) and not re.fullmatch(
        r"[0-9]+|0x[0-9a-f]*", labels[-1]
    )


def endpoint_problem(endpoint: object, hosts: tuple[PushHost, ...]) -> str | None:
    """Why the server must not send to ``endpoint``, or None when it may."""
    if not isinstance(endpoint, str):
        return "Must be a string."
    if len(endpoint) > ENDPOINT_MAX_LENGTH:
        return f"Must be at most {ENDPOINT_MAX_LENGTH} characters."
    if not URL_CHARACTERS.fullmatch(endpoint):
        return "Must be a URL: ASCII, without spaces or control characters."
    if not endpoint.startswith("https://"):
        return "Must be an https:// URL."
    try:
        parts = urlsplit(endpoint)
        port = DEFAULT_HTTPS_PORT if parts.port is None else parts.port
    except ValueError:
        return "Must be a URL with a valid host and port."
    if "@" in parts.netloc:
        return "Must not carry user information."
    if parts.fragment or "#" in endpoint:
        return "Must not have a fragment."
    host = (parts.hostname or "").lower()
    address = host_address(host)
    if address is None and not is_host_name(host):
        return "Must have a valid host name."
    if host.endswith(".") or not any(entry.admits(host, port) for entry in hosts):
        return "Must be on a push service's host (PUSH_SERVICE_HOSTS)."
    return None


def peer_allowed(host: str, peer: str) -> bool:
    """Whether a connection for ``host`` may talk to the address it reached, ``peer``.

    A listed IP address is what it is (the endpoint rule checked it); a host
    name must lead to a public address: no loopback, private, link-local,
    shared or reserved one, however the name resolves.
    """
    if host_address(host.strip("[]")) is not None:
        return True
    address = ipaddress.ip_address(peer.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global
