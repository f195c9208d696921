"""Opaque, tamper-evident page tokens for keyset pagination.

A token is base64url(JSON) holding the last row's sort key and id, plus a digest over that
position and a fingerprint of the query (node kind, filter, order_by). A token from another query,
or one edited by hand, fails the digest and is refused with INVALID_ARGUMENT on `page_token`.
The digest is not a secret MAC: a forged token can only move the cursor of the caller's own
query, which the filter already bounds, so integrity against mistakes is what matters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from sluice_runtime.errors import InvalidArgument

TOKEN_VERSION = 1
MAX_TOKEN_LENGTH = 4_096


def query_fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _digest(position: list[object], fingerprint: str) -> str:
    payload = json.dumps([TOKEN_VERSION, position, fingerprint], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def encode_page_token(fingerprint: str, sort_key: int | str, last_id: int) -> str:
    position: list[object] = [sort_key, last_id]
    body = {"v": TOKEN_VERSION, "p": position, "h": _digest(position, fingerprint)}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> tuple[int | str, int]:
    """The (sort key, id) a token resumes after; InvalidArgument if it is not this query's."""
    malformed = InvalidArgument(
        "page_token is not a token this service issued; pass next_page_token unchanged",
        field="page_token",
        reason="INVALID_PAGE_TOKEN",
    )
    if len(token) > MAX_TOKEN_LENGTH:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        position = body["p"]
        digest = body["h"]
        version = body["v"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise malformed from None
    if (
        version != TOKEN_VERSION
        or not isinstance(position, list)
        or len(position) != 2
        or not isinstance(position[0], int | str)
        or isinstance(position[0], bool)
        or not isinstance(position[1], int)
        or isinstance(position[1], bool)
        or not isinstance(digest, str)
    ):
        raise malformed
    if digest != _digest(position, fingerprint):
        raise InvalidArgument(
            "page_token belongs to another query: send the same filter, order_by (and kind) "
            "as the request that returned it, or start again without a token",
            field="page_token",
            reason="PAGE_TOKEN_MISMATCH",
        )
    return position[0], position[1]
