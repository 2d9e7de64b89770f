"""Which key an object gets on the target, under the declared policy for keys the target cannot
hold, and which source keys would land on the same target key.

Policies (``--invalid-keys``):

* ``skip`` (default): the object is not copied and the report lists it with the reason;
* ``abort``: the whole bucket is listed first and nothing is written if any key is invalid;
* ``encode``: the key is stored reversibly as ``failover-encoded/<base64url of the UTF-8 key>``
  (in segments of 200 characters, so stores with short segment limits hold it), and the original
  key is kept in the object's ``failover-source-key`` metadata. Copying such an object to a store
  that can hold the original key decodes it again (so a failback restores the names). A key whose
  encoding is itself too long becomes ``failover-encoded/sha256/<hex digest>``: its original is
  then only in the metadata.

Two source keys can land on one target key when the target rewrites names it stores (a store that
normalises Unicode, as macOS file systems do, holds NFC and NFD spellings as one name). That is
never resolved by overwriting: the second key is skipped (or the run aborts) and both are named.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
import urllib.parse
from typing import Literal

from ..errors import InvalidRequest, NotSupported
from ..storage import ObjectStore

__all__ = [
    "ENCODED_PREFIX",
    "SOURCE_KEY_META",
    "KeyPolicy",
    "TargetKeys",
    "decode_key",
    "encode_key",
    "hashed_key",
    "is_encoding_of",
    "quote_source_key",
]

KeyPolicy = Literal["skip", "abort", "encode"]
ENCODED_PREFIX = "failover-encoded/"
SOURCE_KEY_META = "failover-source-key"
_SEGMENT = 200


def encode_key(key: str) -> str:
    token = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    return ENCODED_PREFIX + "/".join(token[i : i + _SEGMENT] for i in range(0, len(token), _SEGMENT))


def hashed_key(key: str) -> str:
    return f"{ENCODED_PREFIX}sha256/{hashlib.sha256(key.encode()).hexdigest()}"


def is_encoding_of(stored: str, key: str) -> bool:
    """Whether ``stored`` is the encoded name of ``key`` (either form)."""
    return stored != key and (stored == encode_key(key) or stored == hashed_key(key))


def decode_key(encoded: str) -> str | None:
    """The original of an encoded key; None if ``encoded`` is not one."""
    if not encoded.startswith(ENCODED_PREFIX) or encoded.startswith(f"{ENCODED_PREFIX}sha256/"):
        return None
    token = encoded[len(ENCODED_PREFIX) :].replace("/", "")
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def quote_source_key(key: str) -> str:
    """The original key as a metadata value (ASCII, reversible with ``urllib.parse.unquote``)."""
    return urllib.parse.quote(key, safe="/")


class TargetKeys:
    """Maps source keys to target keys for one target store and policy."""

    def __init__(self, target: ObjectStore, policy: KeyPolicy) -> None:
        self.target = target
        self.policy = policy
        self.normalization = target.capabilities.limits.key_normalization

    def _holds(self, key: str) -> bool:
        try:
            self.target.check_key(key)
        except (InvalidRequest, NotSupported):
            return False
        return True

    def stored_as(self, key: str) -> str:
        """The name the target stores ``key`` under (its declared normalisation applied)."""
        return unicodedata.normalize(self.normalization, key) if self.normalization else key

    def map(self, key: str) -> str:
        """The target key for ``key`` (already moved under the pair's prefix): as is when the
        target holds it, decoded when it is an encoded key the target can hold in its original form,
        encoded under the ``encode`` policy; otherwise as is (checking it then says why not)."""
        original = decode_key(key)
        if original is not None and self._holds(original):
            return self.stored_as(original)
        if self.policy == "encode" and not self._holds(key):
            encoded = encode_key(key)
            return encoded if self._holds(encoded) else hashed_key(key)
        return self.stored_as(key)
