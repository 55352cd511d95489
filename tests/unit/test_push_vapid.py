import base64
import stat
import threading
from pathlib import Path

import pytest

from server.push.vapid import (
    VapidKey,
    VapidKeyError,
    load_or_create_vapid_key,
    vapid_subject_problem,
)


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_first_call_creates_the_key_and_later_calls_load_the_same(tmp_path: Path) -> None:
    path = tmp_path / "data" / "vapid.pem"

    created = load_or_create_vapid_key(path)
    loaded = load_or_create_vapid_key(path)

    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert loaded.public_key_b64url == created.public_key_b64url
    assert sorted(p.name for p in path.parent.iterdir()) == ["vapid.pem"]  # no temp files left


def test_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    load_or_create_vapid_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_public_key_is_what_push_manager_subscribe_takes(tmp_path: Path) -> None:
    key = load_or_create_vapid_key(tmp_path / "vapid.pem")

    point = _decode(key.public_key_b64url)
    assert "=" not in key.public_key_b64url
    assert len(point) == 65
    assert point[0] == 0x04
    assert key.public_key_bytes == point


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    starting_line = threading.Barrier(8)
    keys: list[VapidKey] = []
    lock = threading.Lock()

    def start() -> None:
        starting_line.wait()
        key = load_or_create_vapid_key(path)
        with lock:
            keys.append(key)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8
    assert {key.public_key_b64url for key in keys} == {
        load_or_create_vapid_key(path).public_key_b64url
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vapid.pem"]


def test_an_unreadable_key_file_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    path.write_text("not a key")

    with pytest.raises(VapidKeyError, match="vapid.pem"):
        load_or_create_vapid_key(path)
    assert path.read_text() == "not a key"


@pytest.mark.parametrize(
    "subject",
    ["mailto:ops@acme-sales.com", "https://crm.acme-sales.com", "https://acme.fr/contact"],
)
def test_a_reachable_subject_raises_no_warning(subject: str) -> None:
    assert vapid_subject_problem(subject) is None


@pytest.mark.parametrize(
    "subject",
    [
        "mailto:admin@fieldcrm.invalid",
        "mailto:me@localhost",
        "mailto:me@box.local",
        "https://localhost:8000",
        "ops@acme-sales.com",
        "http://acme-sales.com",
        "mailto:nobody",
    ],
)
def test_a_subject_apple_would_refuse_is_named(subject: str) -> None:
    problem = vapid_subject_problem(subject)

    assert problem is not None and repr(subject) in problem
