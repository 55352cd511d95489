import pytest

from server.push.endpoints import (
    DEFAULT_ALLOWED_PUSH_HOSTS,
    PushEndpointRefused,
    PushSubscriptionRefused,
    check_endpoint,
    check_subscription,
    parse_allowed_hosts,
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
        "https://fcm.googleapis.com:443/fcm/send/abc",  # the port is not part of the check
    ],
)
def test_public_push_services_are_allowed_by_default(endpoint: str) -> None:
    check_endpoint(endpoint, DEFAULT_ALLOWED_PUSH_HOSTS)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/push/x",
        "http://127.0.0.1:9000/push/x",
        "https://evil.com/push",
        "https://fcm.googleapis.com.evil.com/fcm/send/x",
        "https://evilfcm.googleapis.com/fcm/send/x",
        "https://push.apple.com/x",  # "*.push.apple.com" is for subdomains only
        "https://user:secret@fcm.googleapis.com/fcm/send/x",
        "https://fcm.googleapis.com@evil.com/fcm/send/x",
        "http://fcm.googleapis.com/fcm/send/x",
        "ftp://fcm.googleapis.com/x",
        "fcm.googleapis.com/fcm/send/x",
        "not a url",
        "",
        "https://fcm.googleapis.com/fcm/send/" + "a" * 2048,
        "https://fcm.googleapis.com:99999/x",
        "https://[::1/x",
        "https://fcm.googleapis.com/x\nHost: evil.com",
        "https://fcm.googleapis.cöm/x",
    ],
)
def test_anything_else_is_refused_with_a_sentence(endpoint: str) -> None:
    with pytest.raises(PushEndpointRefused) as refused:
        check_endpoint(endpoint, DEFAULT_ALLOWED_PUSH_HOSTS)

    assert refused.value.detail[0].isupper()
    assert refused.value.detail.endswith((".", ")."))


def test_a_local_push_service_needs_its_loopback_address_listed() -> None:
    allowed = parse_allowed_hosts("127.0.0.1")

    check_endpoint("http://127.0.0.1:8123/push/abc", allowed)
    with pytest.raises(PushEndpointRefused):
        check_endpoint("http://127.0.0.2:8123/push/abc", allowed)
    with pytest.raises(PushEndpointRefused):
        check_endpoint("http://localhost:8123/push/abc", allowed)


def test_plain_http_is_refused_for_a_listed_host_that_is_not_loopback() -> None:
    allowed = parse_allowed_hosts("10.0.0.5,push.internal.example")

    check_endpoint("https://10.0.0.5/push/abc", allowed)
    for endpoint in ["http://10.0.0.5/push/abc", "http://push.internal.example/push/abc"]:
        with pytest.raises(PushEndpointRefused, match="https"):
            check_endpoint(endpoint, allowed)


def test_listed_localhost_and_ipv6_loopback_may_use_http() -> None:
    allowed = parse_allowed_hosts("localhost, [::1]")

    check_endpoint("http://localhost:8123/push/abc", allowed)
    check_endpoint("http://[::1]:8123/push/abc", allowed)
    check_endpoint("http://[0:0:0:0:0:0:0:1]:8123/push/abc", allowed)


def test_wildcards_match_subdomains_only() -> None:
    allowed = parse_allowed_hosts(" *.Example.com , push.other.org ")

    assert allowed == ("*.example.com", "push.other.org")
    check_endpoint("https://a.example.com/x", allowed)
    check_endpoint("https://a.b.example.com/x", allowed)
    check_endpoint("https://push.other.org/x", allowed)
    for endpoint in ["https://example.com/x", "https://badexample.com/x", "https://other.org/x"]:
        with pytest.raises(PushEndpointRefused):
            check_endpoint(endpoint, allowed)


def test_a_wildcard_never_matches_an_address() -> None:
    with pytest.raises(PushEndpointRefused):
        check_endpoint("https://127.0.0.1/x", parse_allowed_hosts("*.0.0.1"))


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_allowed_hosts_means_the_public_push_services(value: str | None) -> None:
    assert parse_allowed_hosts(value) == DEFAULT_ALLOWED_PUSH_HOSTS


@pytest.mark.parametrize(
    "value", ["https://fcm.googleapis.com", "fcm.googleapis.com:443", "*", "*.com", "a b", " , "]
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
