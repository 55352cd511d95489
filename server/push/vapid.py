"""The server's VAPID key pair (RFC 8292): made once, kept with the data, loaded on every start.

The server keeps its key in the database (server/push/services.py, table push_keys), so every
process on one PostgreSQL signs with the same key and a database backup carries it. This module
makes and reads keys as PEM text; the file functions serve tools and single-file set-ups.
"""

from __future__ import annotations

import base64
import os
import pathlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid


class VapidKeyError(Exception):
    """The key file exists but cannot be used; the message says what to do about it."""


@dataclass(frozen=True, slots=True)
class VapidKey:
    """The server's push identity.

    `signer` is handed to pywebpush as is: it accepts a py_vapid object directly, which saves
    re-reading and re-parsing the key on every send.
    """

    signer: Vapid
    public_key_b64url: str

    @property
    def public_key_bytes(self) -> bytes:
        """The uncompressed P-256 point (65 bytes, starting 0x04)."""
        return b64url_decode(self.public_key_b64url)


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, the form Web Push uses for keys and tokens."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raises ValueError on anything else."""
    data = text.encode("ascii")
    # validate=True: the lenient default silently drops stray characters.
    return base64.b64decode(data + b"=" * (-len(data) % 4), altchars=b"-_", validate=True)


# Apple's push service refuses (403 BadJwtToken) a subject whose domain cannot exist, while
# FCM and Mozilla accept it, so the mistake would only show on iPhones.
_UNREACHABLE_DOMAINS = (".localhost", ".local", ".invalid", ".example", ".test")


def vapid_subject_problem(subject: str) -> str | None:
    """Why push services may refuse `subject` as the VAPID contact, or None if it looks fine.

    Meant for a warning at start: RFC 8292 wants a mailto: or https: URI where the operator
    can be reached, and Apple checks that its domain is real.
    """
    if subject.startswith("mailto:"):
        domain = subject.partition("@")[2]
    elif subject.startswith("https://"):
        domain = urlsplit(subject).hostname or ""
    else:
        return f"the VAPID subject {subject!r} must be a mailto: or https: URI"
    domain = domain.lower().rstrip(".")
    if not domain or domain == "localhost" or domain.endswith(_UNREACHABLE_DOMAINS):
        return (
            f"the VAPID subject {subject!r} is not on a real domain; Apple's push service "
            "refuses such tokens, so reminders would not reach Safari or iPhones. Set "
            "FIELDCRM_PUSH_SUBJECT to an address or https URL where you can be reached"
        )
    return None


def load_or_create_vapid_key(path: pathlib.Path) -> VapidKey:
    """Load the VAPID key from `path`, making it first if the file does not exist yet.

    Several server processes may start at once on a fresh data directory; exactly one key
    wins (the file is published with a hard link, which fails if the name is taken) and every
    process returns that one, so browsers never subscribe with a key that is then replaced.
    """
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        pem = _create_key_file(path)
    return _key_from_pem(pem, path)


def generate_private_pem() -> bytes:
    """A new P-256 private key as unencrypted PKCS#8 PEM."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    return private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _create_key_file(path: pathlib.Path) -> bytes:
    pem = generate_private_pem()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # 0600 from the first byte: chmod after writing would leave a window where others can read.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        try:
            # Unlike rename, link refuses to replace a key another process has just published.
            os.link(temp, path)
        except FileExistsError:
            return path.read_bytes()
        _fsync_directory(path.parent)
        return pem
    finally:
        temp.unlink(missing_ok=True)


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the new directory entry survive a power cut; POSIX only (Windows cannot open a folder).
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _key_from_pem(pem: bytes, path: pathlib.Path) -> VapidKey:
    advice = (
        f"Restore the key from a backup, or delete {path} to make a new one "
        "(every browser will then have to subscribe to reminders again)."
    )
    return vapid_key_from_pem(pem, where=str(path), advice=advice)


def vapid_key_from_pem(pem: bytes, *, where: str, advice: str) -> VapidKey:
    """The VapidKey for a PEM private key; VapidKeyError naming `where` and `advice` if unusable."""
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise VapidKeyError(f"{where} is not a readable PEM private key ({exc}). {advice}") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise VapidKeyError(f"{where} holds a key that is not P-256, which VAPID needs. {advice}")
    public_point = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.X962,
        format=serialization.PublicFormat.UncompressedPoint,
    )
    return VapidKey(signer=Vapid(private_key), public_key_b64url=b64url_encode(public_point))
