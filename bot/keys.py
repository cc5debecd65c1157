"""The server secret (never in the database) and the ballot keys derived from it.

One secret, from LINLI_SECRET_KEY or else a random key file in the data directory (mode 0600),
signs the console's sessions and keys everything that must not be readable from a copy of the
database alone: the voter roll's digests, receipt hashes and sealed ballots (docs/polls.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE = "console-secret"  # its historical name: the console's session secret came first
SEALED_CHOICE = 64  # bytes every choice is padded to before sealing: lengths reveal nothing
SEALED_MESSAGE_BLOCK = 1024  # a sealed outbox message is padded to a multiple of this
NONCE = 12


class SecretKeyError(ValueError):
    """The configured secret is unusable (names the variable at fault)."""


def secret_key(data_dir: Path) -> str:
    """LINLI_SECRET_KEY, else a random key kept in <data dir>/console-secret (mode 0600)."""
    env = os.environ.get("LINLI_SECRET_KEY", "").strip()
    if env:
        if len(env) < 32:
            raise SecretKeyError("LINLI_SECRET_KEY must be at least 32 characters long")
        return env
    path = Path(data_dir) / KEY_FILE
    if path.is_file():
        os.chmod(path, 0o600)
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Written whole under a name of its own, then linked into place: of several workers
    # starting at once, the first to link wins and the others read its key (each writing its
    # own would sign cookies that the other workers refuse).
    draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        existing = path.read_text(encoding="ascii").strip()
        if len(existing) >= 32:
            return existing
        os.replace(draft, path)  # an unusable key file (cut short): replaced
    finally:
        draft.unlink(missing_ok=True)
    os.chmod(path, 0o600)
    return key


def _derive(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"linli {purpose}".encode()).derive(secret)


class BallotKeys:
    """Keyed digests and sealing for consultations, all derived from the server secret."""

    def __init__(self, secret: str):
        raw = secret.encode()
        self._roll = _derive(raw, "voter roll")
        self._receipts = _derive(raw, "receipts")
        self._ballots = raw

    def voter_digest(self, channel: str, user_id: str) -> str:
        """Who the roll says voted: HMAC of the (old, unkeyed) SHA-256 of channel and chat id.

        Keyed, so a guess ("terminal:fiona") cannot be checked against the roll without the
        secret; over the unkeyed digest, so migration 0008 could rewrite rows /forget had
        already detached from their resident."""
        plain = hashlib.sha256(f"{channel}:{user_id}".encode()).hexdigest()
        return self.roll_digest(plain)

    def roll_digest(self, unkeyed: str) -> str:
        return hmac.new(self._roll, unkeyed.encode(), hashlib.sha256).hexdigest()

    def receipt_hash(self, poll_id: int, code: str) -> str:
        """A normalised receipt code with its poll, keyed with the secret (over the old
        unkeyed SHA-256, so migration 0008 could rewrite the hashes of receipts in hand)."""
        return self.receipt_digest(hashlib.sha256(f"{poll_id}:{code}".encode()).hexdigest())

    def receipt_digest(self, unkeyed: str) -> str:
        return hmac.new(self._receipts, unkeyed.encode(), hashlib.sha256).hexdigest()

    def _poll_key(self, poll_id: int) -> AESGCM:
        return AESGCM(_derive(self._ballots, f"ballots of poll {poll_id}"))

    def seal(self, poll_id: int, option: str) -> bytes:
        """The option id, padded to SEALED_CHOICE bytes, AES-GCM under the poll's key."""
        data = option.encode()
        if len(data) >= SEALED_CHOICE:
            raise ValueError(f"option id {option!r} is longer than {SEALED_CHOICE - 1} bytes")
        padded = bytes([len(data)]) + data + bytes(SEALED_CHOICE - 1 - len(data))
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._poll_key(poll_id).encrypt(nonce, padded, f"poll:{poll_id}".encode())

    def unseal(self, poll_id: int, sealed: bytes) -> str:
        """The option id of a sealed ballot (raises if it was sealed for another poll)."""
        nonce, body = bytes(sealed[:NONCE]), bytes(sealed[NONCE:])
        padded = self._poll_key(poll_id).decrypt(nonce, body, f"poll:{poll_id}".encode())
        return padded[1:1 + padded[0]].decode()


@lru_cache(maxsize=8)
def _keys(secret: str) -> BallotKeys:
    return BallotKeys(secret)


def ballot_keys(data_dir: Path) -> BallotKeys:
    """The ballot keys of this installation (the secret is read once per process and value)."""
    return _keys(secret_key(data_dir))


def _message_key(secret: str) -> AESGCM:
    return AESGCM(_derive(secret.encode(), "outbox secrets"))


def seal_message(data_dir: Path, payload: dict) -> dict:
    """An outbox payload that names a ballot (\u201cYou chose: …\u201d, a receipt), sealed under the
    server secret and padded, so that the row (and on PostgreSQL its old versions and WAL
    records, written in the vote's transaction) reveals neither its text nor its length."""
    raw = json.dumps(payload, ensure_ascii=False).encode()
    size = -(-(len(raw) + 4) // SEALED_MESSAGE_BLOCK) * SEALED_MESSAGE_BLOCK
    padded = len(raw).to_bytes(4, "big") + raw + bytes(size - 4 - len(raw))
    nonce = secrets.token_bytes(NONCE)
    box = _message_key(secret_key(data_dir)).encrypt(nonce, padded, b"outbox")
    return {"sealed": base64.b64encode(nonce + box).decode("ascii")}


def open_message(data_dir: Path, payload: dict) -> dict:
    """The payload `seal_message` sealed; any other payload as it is."""
    if not isinstance(payload, dict) or "sealed" not in payload:
        return payload
    data = base64.b64decode(payload["sealed"])
    padded = _message_key(secret_key(data_dir)).decrypt(data[:NONCE], data[NONCE:], b"outbox")
    length = int.from_bytes(padded[:4], "big")
    return json.loads(padded[4:4 + length].decode())
