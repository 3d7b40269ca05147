"""The rules the push side lives by: which endpoints and peers it may reach, its
settings, its keys, and what web workers never load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from taskapi.config import (
    ConfigError,
    b64url_decode,
    check_dispatcher_config,
    derived_settings,
    generate_vapid_private_key,
    load_config,
    parse_push_hosts,
    public_key_of,
)
from taskapi.push.endpoints import endpoint_problem, peer_allowed
from taskapi.push.sender import Deadline, audience

HOSTS = parse_push_hosts("fcm.googleapis.com, push.example.com:8443, 127.0.0.1, [::1]")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/x",
        "https://a.b.fcm.googleapis.com/x",
        "https://FCM.googleapis.com/x",  # host names are case-insensitive
        "https://push.example.com:8443/x",
        "https://127.0.0.1:4443/push/x",  # a listed address: any port
        "https://[::1]:4443/push/x",
    ],
)
def test_endpoints_on_listed_hosts_pass(endpoint):
    assert endpoint_problem(endpoint, HOSTS) is None


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com.evil.test/x",
        "https://evilfcm.googleapis.com/x",
        "https://push.example.com/x",  # listed with :8443 only
        "https://push.example.com:8444/x",
        "https://x.push.example.com:9000/x",
        "https://127.0.0.2:4443/x",
        "https://[::2]/x",
        "https://[::ffff:127.0.0.1]/x",  # the same loopback, spelled otherwise: not listed
        "https://127.0.0.1@fcm.googleapis.com/x",
        "https://fcm.googleapis.com:0/x",
        "http://127.0.0.1:4443/x",
        # Malformed hosts and ports, even around a listed address.
        "https://[::1]x/push/x",
        "https://[::1]x:4443/push/x",
        "https://[::1]]/push/x",
        "https://[::1%25lo]/push/x",
        "https://127.0.0.1:0/push/x",
        "https://127.0.0.1:/push/x",
        "https://127.0.0.1:04443/push/x",
        "https://fcm.googleapis.com:/x",
        "https://fcm.googleapis.com:0443/x",
    ],
)
def test_other_endpoints_fail(endpoint):
    assert endpoint_problem(endpoint, HOSTS)


@pytest.mark.parametrize(
    "raw", ["", " , ", "fcm.googleapis.com/x", "*.googleapis.com", "127.1", "host:0", "host:x"]
)
def test_unusable_host_settings_are_refused(raw):
    with pytest.raises(ValueError):
        parse_push_hosts(raw)


@pytest.mark.parametrize(
    ("host", "peer", "allowed"),
    [
        ("fcm.googleapis.com", "142.250.185.74", True),
        ("fcm.googleapis.com", "2a00:1450:4001:82b::200a", True),
        ("fcm.googleapis.com", "127.0.0.1", False),
        ("fcm.googleapis.com", "10.1.2.3", False),
        ("fcm.googleapis.com", "169.254.169.254", False),
        ("fcm.googleapis.com", "100.64.0.1", False),  # carrier-grade NAT
        ("fcm.googleapis.com", "::ffff:192.168.0.1", False),
        ("fcm.googleapis.com", "fe80::1%eth0", False),
        # IPv6 forms that carry a private IPv4 address, or are not public otherwise.
        ("fcm.googleapis.com", "64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("fcm.googleapis.com", "64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("fcm.googleapis.com", "64:ff9b:1::a00:1", False),  # local-use NAT64
        ("fcm.googleapis.com", "2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("fcm.googleapis.com", "2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("fcm.googleapis.com", "::ffff:10.0.0.1", False),  # IPv4-mapped
        ("fcm.googleapis.com", "::ffff:0:a00:1", False),  # IPv4-translated (SIIT) 10.0.0.1
        ("fcm.googleapis.com", "::a00:1", False),  # IPv4-compatible (deprecated)
        ("fcm.googleapis.com", "::8.8.8.8", False),
        ("fcm.googleapis.com", "2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo
        ("fcm.googleapis.com", "fec0::1", False),  # site-local (deprecated)
        ("fcm.googleapis.com", "ff0e::1", False),  # multicast
        ("fcm.googleapis.com", "224.0.0.1", False),
        ("fcm.googleapis.com", "64:ff9b::808:808", True),  # NAT64 of a public address
        ("fcm.googleapis.com", "2002:808:808::1", True),  # 6to4 of a public address
        ("127.0.0.1", "127.0.0.1", True),  # a listed address is what it is
    ],
)
def test_a_host_name_must_lead_to_a_public_address(host, peer, allowed):
    assert peer_allowed(host, peer) is allowed


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/x?y=1", "https://fcm.googleapis.com"),
        ("https://FCM.GoogleAPIs.com/x", "https://fcm.googleapis.com"),  # RFC 6454: lower case
        ("https://fcm.googleapis.com:443/x", "https://fcm.googleapis.com"),  # no default port
        ("https://push.example.com:8443/a/b", "https://push.example.com:8443"),
        ("https://127.0.0.1:4443/push/x", "https://127.0.0.1:4443"),
        ("https://[::1]:4443/push/x", "https://[::1]:4443"),
    ],
)
def test_the_vapid_audience_is_the_endpoints_origin(endpoint, origin):
    """RFC 8292 section 2: ``aud`` is the origin of the push resource, never a path."""
    assert audience(endpoint) == origin


def test_vapid_keys_are_raw_p256_keys():
    private_key = generate_vapid_private_key()
    assert len(b64url_decode(private_key)) == 32
    point = b64url_decode(public_key_of(private_key))
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a valid point


def config_for(tmp_path, **environ):
    config = load_config(environ, str(tmp_path))
    return config | derived_settings(config)


def test_development_makes_a_key_pair_once(tmp_path):
    first = config_for(tmp_path, APP_ENV="development")
    assert first["VAPID_PUBLIC_KEY"] and first["VAPID_SUBJECT"].startswith("mailto:")
    assert (
        config_for(tmp_path, APP_ENV="development")["VAPID_PUBLIC_KEY"]
        == (first["VAPID_PUBLIC_KEY"])
    )
    assert (tmp_path / "vapid-private-key").stat().st_mode & 0o777 == 0o600
    check_dispatcher_config(first)


def test_production_has_no_push_without_keys_and_the_dispatcher_refuses(tmp_path):
    config = config_for(tmp_path, APP_ENV="production")
    assert config["VAPID_PUBLIC_KEY"] is None
    assert [host.host for host in config["PUSH_SERVICES"]] == [
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "notify.windows.com",
        "push.apple.com",
    ]
    with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY and VAPID_SUBJECT"):
        check_dispatcher_config(config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VAPID_PRIVATE_KEY", "too-short"),
        ("VAPID_PRIVATE_KEY", "A" * 43),  # zero is no private key
        ("VAPID_SUBJECT", "ops@example.com"),
        ("VAPID_SUBJECT", "http://example.com"),
        ("PUSH_SERVICE_HOSTS", "https://fcm.googleapis.com"),
        ("REMINDER_POLL_SECONDS", "0"),
        ("PUSH_TTL_SECONDS", str(29 * 24 * 3600)),
    ],
)
def test_bad_push_settings_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        config_for(tmp_path, APP_ENV="production", **{name: value})


def test_the_ca_file_honours_the_environment(tmp_path):
    assert load_config({"SSL_CERT_FILE": "/x/ca.pem"}, str(tmp_path))["PUSH_CA_BUNDLE"] == (
        "/x/ca.pem"
    )
    both = {"SSL_CERT_FILE": "/x/ca.pem", "REQUESTS_CA_BUNDLE": "/y/ca.pem"}
    assert load_config(both, str(tmp_path))["PUSH_CA_BUNDLE"] == "/y/ca.pem"
    # Neither: the system store, not a bundle that came with a Python package.
    system = load_config({}, str(tmp_path))["PUSH_CA_BUNDLE"]
    assert os.path.realpath(system) == "/etc/ssl/certs/ca-certificates.crt"


UNUSABLE_CA_FILES = {
    "missing": ("missing.pem", None, "does not exist"),
    "in a missing folder": ("missing/ca.pem", None, "does not exist"),
    "empty": ("empty.pem", "", "holds no PEM certificate"),
    "not PEM": ("junk.pem", "not a certificate\n", "holds no PEM certificate"),
}


@pytest.mark.parametrize(
    ("name", "text", "problem"), UNUSABLE_CA_FILES.values(), ids=UNUSABLE_CA_FILES
)
def test_the_dispatcher_refuses_a_ca_file_it_cannot_use(tmp_path, name, text, problem):
    """At startup, in one line, not as every push failing with an OSError."""
    ca_file = str(tmp_path / name)
    if text is not None:
        (tmp_path / name).write_text(text)
    config = config_for(tmp_path, APP_ENV="development", SSL_CERT_FILE=ca_file)
    with pytest.raises(ConfigError, match=problem) as refused:
        check_dispatcher_config(config)
    assert ca_file in str(refused.value) and "\n" not in str(refused.value)


def test_the_dispatcher_takes_a_ca_file_or_folder_it_can_use(tmp_path):
    system = "/etc/ssl/certs/ca-certificates.crt"
    for ca in (system, "/etc/ssl/certs"):  # requests takes a folder of certificates too
        check_dispatcher_config(config_for(tmp_path, APP_ENV="development", SSL_CERT_FILE=ca))


SENDING_SIDE = ("pywebpush", "requests", "http_ece", "py_vapid", "aiohttp", "urllib3")


def test_web_workers_never_load_the_sending_side(tmp_path):
    """create_app() (what each gunicorn worker runs) loads none of pywebpush's libraries."""
    script = (
        "import sys\n"
        "from taskapi import create_app\n"
        "app = create_app()\n"
        "client = app.test_client()\n"
        "assert client.get('/api/push/key').status_code == 200\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {SENDING_SIDE!r}))\n"
    )
    environment = {
        "APP_ENV": "production",
        "BETTER_AUTH_SECRET": "s" * 43,
        "VAPID_PRIVATE_KEY": generate_vapid_private_key(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_deadline_that_runs_out_after_the_whole_answer_cuts_nothing():
    """The timer firing between the answer's last byte and its cancel would
    otherwise have a push the service took retried: the reminder twice."""
    answered, cut = Deadline(60), Deadline(60)
    answered.answer_read()
    answered.expire()
    cut.expire()
    assert (answered.passed, cut.passed) == (False, True)
