"""Encryption at rest: what people and counselors wrote is stored only as AES-GCM ciphertext.

Keys come from the environment (`ENCRYPTION_KEYS`, see `bot/settings.py`) as a key ring: entries
`ID:BASE64KEY` separated by commas, the first the one new values are written under, the others kept
so that values written under them stay readable until `tsunagi keys rotate` has re-encrypted them.

Each stored value names its key: text as `ID:BASE64(nonce + ciphertext + tag)`, bytes as
`ID:` + nonce + ciphertext + tag. The prefix lets rotation find the rows still under an old key in
SQL, and a value under a key the ring no longer holds fails with that key's name instead of as
garbage. AES-GCM authenticates every value: a changed byte fails to decrypt, it never reads back as
other words. Nonces are random (96 bits), which is safe far beyond the values a key will encrypt
before it is rotated.

The column types (`EncryptedText`, `EncryptedJSON`, `EncryptedBytes`) encrypt on the way into the
database and decrypt on the way out, so the code above them reads and writes plain values. They use
the ring this process installed with `use_keys` (the service at start, each command, the tests).
Nothing can be matched on these columns in SQL except NULL: code that needs to find a row by its words
must not exist (retention, unsend and deletion select by ids, states and times).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Text, TypeDecorator
from sqlalchemy.sql import ClauseElement, operators

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
# A key id is short and plain: it is stored in front of every value and typed by operators.
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
SEPARATOR = ":"


class EncryptionError(Exception):
    """Base of the errors below; no message quotes a key or a stored value."""


class KeysNotSet(EncryptionError):
    """No key ring was installed in this process."""

    def __init__(self) -> None:
        super().__init__("no encryption keys: set ENCRYPTION_KEYS (`tsunagi keys generate` prints a new key)")


class BadKeyRing(EncryptionError):
    """`ENCRYPTION_KEYS` is malformed (the message never quotes a key)."""


class DecryptionError(EncryptionError):
    """A stored value cannot be read: its key is not in the ring, or it was altered."""


class KeyRing:
    """The keys this process can read with, and the one it writes with (`current`)."""

    def __init__(self, current: str, keys: Mapping[str, bytes]) -> None:
        self.current, self.keys = current, dict(keys)
        # One cipher object per key, made once: AESGCM keeps its key schedule.
        self._ciphers = {key_id: AESGCM(key) for key_id, key in self.keys.items()}

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Read `ID:BASE64KEY[,ID:BASE64KEY...]`; the first entry writes."""
        keys: dict[str, bytes] = {}
        for number, entry in enumerate((part.strip() for part in text.split(",")), start=1):
            key_id, separator, encoded = entry.partition(SEPARATOR)
            if not separator or not KEY_ID.fullmatch(key_id):
                raise BadKeyRing(f"entry {number} is not ID:BASE64KEY (an id of letters, digits, - or _, up to 16)")
            if key_id in keys:
                raise BadKeyRing(f"key id {key_id!r} appears twice")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != KEY_BYTES:
                raise BadKeyRing(f"key {key_id!r} is not {KEY_BYTES} bytes in base64 (`tsunagi keys generate` makes one)")
            keys[key_id] = key
        return cls(next(iter(keys)), keys)

    @property
    def prefix(self) -> str:
        """What every value written now starts with."""
        return self.current + SEPARATOR

    def encrypt(self, data: bytes) -> bytes:
        """`data` under the current key, as `ID:` + nonce + ciphertext + tag."""
        nonce = os.urandom(NONCE_BYTES)
        return self.prefix.encode() + nonce + self._ciphers[self.current].encrypt(nonce, data, None)

    def decrypt(self, stored: bytes) -> bytes:
        """The plain bytes of a value `encrypt` made, under whichever key of the ring it names."""
        key_id, separator, sealed = stored.partition(SEPARATOR.encode())
        return self._open(key_id.decode("ascii", "replace") if separator else "", sealed)

    def encrypt_text(self, text: str) -> str:
        """`text` under the current key, as `ID:BASE64`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._ciphers[self.current].encrypt(nonce, text.encode(), None)
        return self.prefix + base64.b64encode(sealed).decode("ascii")

    def decrypt_text(self, stored: str) -> str:
        """The text of a value `encrypt_text` made."""
        key_id, separator, encoded = stored.partition(SEPARATOR)
        try:
            sealed = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionError(f"a stored value under key {key_id!r} is not base64: it was altered, or never encrypted") from None
        return self._open(key_id if separator else "", sealed).decode()

    def _open(self, key_id: str, sealed: bytes) -> bytes:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            if not key_id:
                raise DecryptionError("a stored value names no key: it was never encrypted, or was altered")
            raise DecryptionError(
                f"a stored value is under key {key_id!r}, which ENCRYPTION_KEYS does not hold (it holds {', '.join(self.keys)})"
            )
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
        except (InvalidTag, ValueError):
            raise DecryptionError(f"a stored value under key {key_id!r} fails authentication: it was altered, or the key is not the one it was written with") from None


def generate_key(key_id: str | None = None) -> str:
    """A new ring entry `ID:BASE64KEY` (the id defaults to today's date and a random suffix, e.g. 20261206-3fa2)."""
    key_id = key_id or f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    if not KEY_ID.fullmatch(key_id):
        raise BadKeyRing("a key id is letters, digits, - or _, up to 16")
    return f"{key_id}{SEPARATOR}{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


# A fixed, published key for `tsunagi demo` and `simulate` when ENCRYPTION_KEYS is not set: they only
# write into a database of made-up people (`storage/demo_guard.py`), and `serve` refuses this key.
DEMO_KEY_ID = "demo"
DEMO_KEYS = f"{DEMO_KEY_ID}{SEPARATOR}{base64.b64encode(b'tsunagi demo key: made-up data!!').decode('ascii')}"

_ring: KeyRing | None = None


def use_keys(ring: KeyRing | None) -> None:
    """Install the key ring every encrypted column of this process uses (None: none, every use fails clearly)."""
    global _ring
    _ring = ring


def key_ring() -> KeyRing:
    """The installed key ring; `KeysNotSet` if there is none."""
    if _ring is None:
        raise KeysNotSet
    return _ring


class _OnlyNull(TypeDecorator.Comparator[Any]):
    """SQL may ask an encrypted column whether it is NULL, nothing else.

    Each value has its own nonce, so `column == "words"` would silently match nothing, and ordering or
    LIKE would read ciphertext: those raise instead, naming the column.
    """

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        # Column against column is how SQLAlchemy itself matches columns (e.g. in an ORM UPDATE); a value is not.
        if op in (operators.is_, operators.is_not) or (op in (operators.eq, operators.ne) and (other[0] is None or isinstance(other[0], ClauseElement))):
            return super().operate(op, *other, **kwargs)
        raise TypeError(f"{self.expr} is encrypted: SQL can only test it for NULL (find rows by ids, states and times)")

    def reverse_operate(self, op: Any, other: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.expr} is encrypted: SQL can only test it for NULL (find rows by ids, states and times)")


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted (`ID:BASE64`); NULL stays NULL, so "is there text" stays a query."""

    impl = Text
    cache_ok = True
    comparator_factory = _OnlyNull

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else key_ring().encrypt_text(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else key_ring().decrypt_text(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value stored encrypted as text: the database cannot look inside it, only the application."""

    impl = Text
    cache_ok = True
    comparator_factory = _OnlyNull

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return key_ring().encrypt_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(key_ring().decrypt_text(value))


class EncryptedBytes(TypeDecorator[bytes]):
    """Binary content (an image a person sent) stored encrypted: `ID:` + nonce + ciphertext + tag."""

    impl = LargeBinary
    cache_ok = True
    comparator_factory = _OnlyNull

    def process_bind_param(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else key_ring().encrypt(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Any) -> bytes | None:
        return None if value is None else key_ring().decrypt(bytes(value))


ENCRYPTED_TYPES = (EncryptedText, EncryptedJSON, EncryptedBytes)
