"""Artifact keys: relative, '/'-separated names that can never leave the store's root.

The same rules hold for every backend, so a key that works on `file://` works on `s3://` and the
other way round. Percent-decoded forms are checked too (repeatedly, for double encoding): keys end
up in URIs and HTTP paths, where a layer that decodes `%2e%2e%2f` would turn it into `../`.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from .errors import InvalidArtifactKey

# The one folder name the stores keep for themselves (temporary uploads, digest records).
RESERVED_SEGMENT = ".sluice"

MAX_KEY_BYTES = 1024  # S3's limit on object names
MAX_SEGMENT_BYTES = 255  # NAME_MAX of common file systems


def check_key(key: object) -> str:
    """Return `key` unchanged when it is a valid artifact key, else raise InvalidArtifactKey."""
    if not isinstance(key, str):
        raise InvalidArtifactKey(key, f"must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidArtifactKey(key, "must not be empty")
    _check_text(key, key, encoded=False)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidArtifactKey(key, f"is longer than {MAX_KEY_BYTES} bytes in UTF-8")
    if key.startswith("/"):
        raise InvalidArtifactKey(key, "must be relative, not start with '/'")
    for segment in key.split("/"):
        _check_segment(key, segment)
    return key


def check_prefix(prefix: object) -> str:
    """Return `prefix` unchanged when it can start artifact keys ('' selects every key).

    A prefix follows the key rules except that it may end with '/' and its last segment may be
    partial, as in S3 listings: 'runs/1' selects 'runs/1/model' and 'runs/10/model'.
    """
    if not isinstance(prefix, str):
        raise InvalidArtifactKey(prefix, f"must be a string, not {type(prefix).__name__}")
    if prefix.startswith("/"):
        raise InvalidArtifactKey(prefix, "must be relative, not start with '/'")
    body = prefix.removesuffix("/")
    if body:
        try:
            check_key(body)
        except InvalidArtifactKey as error:
            raise InvalidArtifactKey(prefix, error.reason) from None
    return prefix


def is_internal(name: str) -> bool:
    """Whether a stored name belongs to the store's own bookkeeping, never to an artifact."""
    return RESERVED_SEGMENT in name.split("/")


def is_valid_key(name: str) -> bool:
    try:
        check_key(name)
    except InvalidArtifactKey:
        return False
    return True


def _check_segment(key: str, segment: str) -> None:
    if not segment:
        raise InvalidArtifactKey(key, "has an empty segment (a leading, trailing or doubled '/')")
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise InvalidArtifactKey(key, f"has a segment longer than {MAX_SEGMENT_BYTES} bytes")
    _check_segment_name(key, segment, encoded=False)
    # Decode until nothing changes: '%252e' -> '%2e' -> '.'. Each round shortens the text.
    decoded = segment
    while (next_decoded := unquote(decoded)) != decoded:
        decoded = next_decoded
        _check_text(key, decoded, encoded=True)
        if "/" in decoded:
            raise InvalidArtifactKey(key, "has a percent-encoded '/'")
        _check_segment_name(key, decoded, encoded=True)


def _check_segment_name(key: str, segment: str, *, encoded: bool) -> None:
    how = "percent-encoded " if encoded else ""
    if segment in (".", ".."):
        raise InvalidArtifactKey(key, f"has a {how}{segment!r} segment")
    if segment == RESERVED_SEGMENT:
        raise InvalidArtifactKey(
            key, f"uses the {how}segment {RESERVED_SEGMENT!r}, reserved for the store itself"
        )


def _check_text(key: str, text: str, *, encoded: bool) -> None:
    how = "percent-encoded " if encoded else ""
    if "\\" in text:
        raise InvalidArtifactKey(key, f"has a {how}backslash; use '/' to separate segments")
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidArtifactKey(key, f"has a {how}control character {char!r}")
        if category == "Cs":
            raise InvalidArtifactKey(key, f"has an unpaired {how}surrogate {char!r}")
