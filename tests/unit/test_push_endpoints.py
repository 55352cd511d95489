import pytest

from server.push.endpoints import (
    DEFAULT_ALLOWED_PUSH_HOSTS,
    PushEndpointRefused,
    PushSubscriptionRefused,
    check_endpoint,
    check_subscription,
    parse_allowed_hosts,
    parse_endpoint,
)

P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/dKv3:APA91bH",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABm",
        "https://web.push.apple.com/QGx6b3Rn",
        "https://api.push.apple.com/3/device/abc",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD",
        "https://FCM.GoogleAPIs.com/fcm/send/abc",  # hosts compare case-insensitively
        "https://fcm.googleapis.com:443/fcm/send/abc",  # port 443 written out
    ],
)
def test_public_push_services_are_allowed_by_default(endpoint: str) -> None:
    check_endpoint(endpoint, DEFAULT_ALLOWED_PUSH_HOSTS)


# Each of these reads one way to one URL parser and another way to another, or points at an
# address a push service never has. Every one is refused before anything is stored or sent.
HOSTILE_ENDPOINTS = [
    ("backslash before @", "https://fcm.googleapis.com\\@evil.com/fcm/send/x"),
    ("backslash in the host", "https://evil.com\\.notify.windows.com/w/x"),
    ("backslash for a slash", "https:\\\\fcm.googleapis.com/fcm/send/x"),
    ("userinfo", "https://user:secret@fcm.googleapis.com/fcm/send/x"),
    ("@ the real host", "https://fcm.googleapis.com@evil.com/fcm/send/x"),
    ("@ in the path", "https://fcm.googleapis.com/fcm/send/x@evil.com"),
    ("IPv4 literal", "https://8.8.8.8/fcm/send/x"),
    ("IPv4 loopback", "https://127.0.0.1/fcm/send/x"),
    ("IPv4 in octal", "https://0177.0.0.1/x"),
    ("IPv4 in hex", "https://0x7f.0x0.0x0.0x1/x"),
    ("IPv4 as one number", "https://2130706433/x"),
    ("IPv4 short form", "https://127.1/x"),
    ("IPv6 literal", "https://[2001:4860:4860::8888]/x"),
    ("IPv6 loopback", "https://[::1]/x"),
    ("IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/x"),
    ("IPv6 zone", "https://[fe80::1%25eth0]/x"),
    ("another port", "https://fcm.googleapis.com:8443/fcm/send/x"),
    ("port 443 spelt 0443", "https://fcm.googleapis.com:0443/fcm/send/x"),
    ("empty port", "https://fcm.googleapis.com:/fcm/send/x"),
    ("port out of range", "https://fcm.googleapis.com:99999/x"),
    ("http", "http://fcm.googleapis.com/fcm/send/x"),
    ("ftp", "ftp://fcm.googleapis.com/x"),
    ("no scheme", "fcm.googleapis.com/fcm/send/x"),
    ("scheme-relative", "//fcm.googleapis.com/fcm/send/x"),
    ("one slash", "https:/fcm.googleapis.com/fcm/send/x"),
    ("no path", "https://fcm.googleapis.com"),
    ("query without path", "https://fcm.googleapis.com?x=1"),
    ("fragment", "https://fcm.googleapis.com/fcm/send/x#frag"),
    ("fragment hiding the host", "https://evil.com#.notify.windows.com/x"),
    ("NUL", "https://fcm.googleapis.com/fcm/send/x\x00"),
    ("NUL in the host", "https://fcm.googleapis.com\x00.evil.com/x"),
    ("tab", "https://fcm.googleapis\t.com/fcm/send/x"),
    ("newline", "https://fcm.googleapis.com/x\nHost: evil.com"),
    ("space", "https://fcm.googleapis.com /x"),
    ("DEL", "https://fcm.googleapis.com/\x7f"),
    ("percent-encoded dot", "https://fcm.googleapis.com%2eevil.com/x"),
    ("percent-encoded host", "https://%66cm.googleapis.com/x"),
    ("ideographic full stop", "https://fcm\u3002googleapis.com/x"),
    ("fullwidth full stop", "https://fcm\uff0egoogleapis.com/x"),
    ("non-ASCII host", "https://fcm.googleapis.c\u00f6m/x"),
    ("fullwidth letters", "https://\uff46cm.googleapis.com/x"),
    ("punycode label", "https://xn--80ak6aa92e.push.apple.com/x"),
    ("trailing dot", "https://fcm.googleapis.com./fcm/send/x"),
    ("empty label", "https://fcm..googleapis.com/x"),
    ("label with a leading hyphen", "https://-a.push.apple.com/x"),
    ("underscore", "https://a_b.push.apple.com/x"),
    ("lookalike suffix", "https://fcm.googleapis.com.evil.com/fcm/send/x"),
    ("lookalike prefix", "https://evilfcm.googleapis.com/fcm/send/x"),
    ("wildcard's own domain", "https://push.apple.com/x"),
    ("metadata address", "http://169.254.169.254/latest/meta-data/"),
    ("localhost", "http://localhost:8080/push/x"),
    ("too long", "https://fcm.googleapis.com/fcm/send/" + "a" * 2048),
    ("not a url", "not a url"),
    ("empty", ""),
]


@pytest.mark.parametrize(
    "endpoint", [e for _, e in HOSTILE_ENDPOINTS], ids=[name for name, _ in HOSTILE_ENDPOINTS]
)
def test_hostile_endpoints_are_refused_with_a_sentence(endpoint: str) -> None:
    with pytest.raises(PushEndpointRefused) as refused:
        parse_endpoint(endpoint, DEFAULT_ALLOWED_PUSH_HOSTS)

    assert refused.value.detail[0].isupper()
    assert refused.value.detail.endswith((".", ")."))


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://fcm.googleapis.com\\@evil.com/x", "backslash"),
        ("https://u:p@fcm.googleapis.com/x", "@"),
        ("https://8.8.8.8/x", "IP address"),
        ("https://fcm.googleapis.com:8443/x", "443"),
        ("http://fcm.googleapis.com/x", "https"),
        ("https://fcm.googleapis.com/x#a", "fragment"),
        ("https://fcm.googleapis.com%2e.evil.com/x", "percent-encoded"),
        ("https://fcm.googleapis.com./x", "dot"),
        ("https://xn--fcm.push.apple.com/x", "IDNA"),
    ],
)
def test_the_refusal_says_what_is_wrong(endpoint: str, why: str) -> None:
    with pytest.raises(PushEndpointRefused, match=why):
        parse_endpoint(endpoint, DEFAULT_ALLOWED_PUSH_HOSTS)


def test_the_target_is_what_the_http_client_reads() -> None:
    target = parse_endpoint(
        "https://WNS2-par02p.notify.windows.com:443/w/?token=BQYAAAD%2bx",
        DEFAULT_ALLOWED_PUSH_HOSTS,
    )

    assert (target.scheme, target.host, target.port) == (
        "https",
        "wns2-par02p.notify.windows.com",
        443,
    )
    assert target.public_only
    assert target.origin == "https://wns2-par02p.notify.windows.com"
    assert target.authority == "wns2-par02p.notify.windows.com"


def test_a_whole_origin_allows_exactly_that_scheme_host_and_port() -> None:
    allowed = parse_allowed_hosts("http://127.0.0.1:8123")

    target = parse_endpoint("http://127.0.0.1:8123/push/abc", allowed)

    assert (target.scheme, target.host, target.port, target.public_only) == (
        "http",
        "127.0.0.1",
        8123,
        False,
    )
    assert target.origin == "http://127.0.0.1:8123"
    for endpoint in [
        "http://127.0.0.1:8124/push/abc",  # another port
        "https://127.0.0.1:8123/push/abc",  # another scheme
        "http://127.0.0.1/push/abc",  # the default port
        "http://127.0.0.2:8123/push/abc",  # another address
        "http://localhost:8123/push/abc",  # the same machine, by another name
        "http://127.0.0.1:08123/push/abc",  # the same port, spelt otherwise
        "http://u@127.0.0.1:8123/push/abc",
        "http://127.0.0.1:8123\\@evil.com/push/abc",
    ]:
        with pytest.raises(PushEndpointRefused):
            parse_endpoint(endpoint, allowed)


def test_whole_origins_by_name_and_ipv6_and_default_ports() -> None:
    allowed = parse_allowed_hosts("https://Push.Internal.example, http://[::1]:8080, http://push")

    assert allowed == ("https://push.internal.example:443", "http://[::1]:8080", "http://push:80")
    assert not parse_endpoint("https://push.internal.example/x", allowed).public_only
    assert parse_endpoint("https://push.internal.example:443/x", allowed).port == 443
    assert parse_endpoint("http://[0:0:0:0:0:0:0:1]:8080/x", allowed).host == "::1"
    assert parse_endpoint("http://push/x", allowed).origin == "http://push"
    for endpoint in ["http://push.internal.example/x", "https://push.internal.example:8443/x"]:
        with pytest.raises(PushEndpointRefused, match="whole origin"):
            parse_endpoint(endpoint, allowed)


def test_a_host_name_keeps_the_strict_rules() -> None:
    allowed = parse_allowed_hosts("push.internal.example")

    assert parse_endpoint("https://push.internal.example/x", allowed).public_only
    for endpoint in ["http://push.internal.example/x", "https://push.internal.example:8443/x"]:
        with pytest.raises(PushEndpointRefused):
            parse_endpoint(endpoint, allowed)


def test_wildcards_match_subdomains_only() -> None:
    allowed = parse_allowed_hosts(" *.Example.com , push.other.org ")

    assert allowed == ("*.example.com", "push.other.org")
    check_endpoint("https://a.example.com/x", allowed)
    check_endpoint("https://a.b.example.com/x", allowed)
    check_endpoint("https://push.other.org/x", allowed)
    for endpoint in ["https://example.com/x", "https://badexample.com/x", "https://other.org/x"]:
        with pytest.raises(PushEndpointRefused):
            check_endpoint(endpoint, allowed)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_allowed_hosts_means_the_public_push_services(value: str | None) -> None:
    assert parse_allowed_hosts(value) == DEFAULT_ALLOWED_PUSH_HOSTS


@pytest.mark.parametrize(
    "value",
    [
        "fcm.googleapis.com:443",
        "*",
        "*.com",
        "*.0.0.1",
        "a b",
        " , ",
        "127.0.0.1",  # an address is named as a whole origin, http://127.0.0.1:8080
        "[::1]",
        "localhost",
        "https://fcm.googleapis.com/fcm",
        "http://user@10.1.2.3:8080",
        "ftp://10.1.2.3:21",
        "http://10.1.2.3:99999",
        "http://010.1.2.3:8080",
        "http://push.example:8080?x",
    ],
)
def test_a_mistyped_allowed_hosts_setting_stops_the_server(value: str) -> None:
    with pytest.raises(ValueError, match="FIELDCRM_PUSH_ALLOWED_HOSTS"):
        parse_allowed_hosts(value)


def test_a_browser_subscription_passes() -> None:
    check_subscription(
        {
            "endpoint": "https://fcm.googleapis.com/fcm/send/x",
            "keys": {"p256dh": P256DH, "auth": AUTH},
        },
        DEFAULT_ALLOWED_PUSH_HOSTS,
    )


@pytest.mark.parametrize(
    "keys",
    [
        None,
        {"auth": AUTH},
        {"p256dh": P256DH},
        {"p256dh": "not*base64", "auth": AUTH},
        {"p256dh": P256DH[:43], "auth": AUTH},  # 32 bytes: not a point
        {"p256dh": "BA" + "A" * 85, "auth": AUTH},  # 65 bytes, but not on the curve
        {"p256dh": P256DH, "auth": AUTH[:-2]},
    ],
)
def test_a_subscription_without_usable_keys_is_refused(keys: object) -> None:
    subscription = {"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": keys}

    with pytest.raises(PushSubscriptionRefused):
        check_subscription(subscription, DEFAULT_ALLOWED_PUSH_HOSTS)
