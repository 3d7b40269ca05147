"""Which push endpoints the server may ever contact: the rule against SSRF.

A subscription's endpoint comes from a browser, so from whoever holds a
token: the server must never send a request to an address a user chose.
An endpoint is accepted only when it is ``https://`` on a push service's
host: equal to an entry of ``PUSH_SERVICE_HOSTS`` or a subdomain of it at a
label boundary (``fcm.googleapis.com`` admits ``x.fcm.googleapis.com``,
never ``evilfcm.googleapis.com`` nor ``fcm.googleapis.com.evil.test``).
No user information (``user@host``), no IP literal unless an entry names
that address, no fragment, nothing outside RFC 3986's characters, nothing
after a host but a plain port (1-65535, no leading zero). An entry
that is a host name admits port 443 only unless it names a port
(``push.example.com:8443``); an entry that is an IP address (a stand-in
service on loopback, for tests and development) admits any port of it.

The entries themselves are parsed with the other settings (taskapi.config:
``parse_push_hosts``, ``PushHost.admits``). The subscription schema checks an
endpoint with ``endpoint_problem`` when it
is stored, and the sender checks it again before every push (the setting
may have narrowed since); the sender also refuses to connect to an address
that is not public when the host is a name (``peer_allowed``), so a listed
domain's DNS cannot point pushes into the private network.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from ..config import DEFAULT_HTTPS_PORT, PushHost, host_address, is_host_name

ENDPOINT_MAX_LENGTH = 2048
# RFC 3986's unreserved, reserved and percent characters: nothing else is part of a URL.
URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+")
# A host name, an IPv4 address or a bracketed IPv6 one (no zone), and a port as
# written by whoever means it: no empty port, no leading zero, never 0.
AUTHORITY = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[1-9][0-9]{0,4})?")


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
    if not AUTHORITY.fullmatch(parts.netloc):  # urlsplit accepts "[::1]x" and ":0443"
        return "Must be a URL with a valid host and port."
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
    shared, reserved or multicast one, however the name resolves, nor an IPv6
    address that leads to such an IPv4 one (mapped, 6to4, NAT64).
    """
    if host_address(host.strip("[]")) is not None:
        return True
    return is_public(ipaddress.ip_address(peer.split("%", 1)[0]))


# RFC 6052's well-known NAT64 prefix: a gateway forwards to the IPv4 address in the last 32 bits.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NOT_PUBLIC_V6 = tuple(
    ipaddress.ip_network(network)
    for network in (
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translated inside the network
        "::/96",  # IPv4-compatible (deprecated): the IPv4 address is anyone's
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 7915): likewise
        "2001::/32",  # Teredo: tunnels to an IPv4 address
        "fec0::/10",  # site-local (deprecated); Python still calls it global
    )
)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A unicast address on the internet; an IPv6 one that carries an IPv4 address
    (mapped, 6to4, NAT64) only when that address is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if any(address in network for network in NOT_PUBLIC_V6):
            return False
    return address.is_global and not address.is_multicast
