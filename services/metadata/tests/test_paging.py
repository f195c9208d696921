"""Page tokens: opaque, bound to their query, and refused when edited."""

from __future__ import annotations

import base64
import json

import pytest
from sluice_metadata.paging import decode_page_token, encode_page_token, query_fingerprint
from sluice_runtime.errors import InvalidArgument


def test_round_trip() -> None:
    fingerprint = query_fingerprint("ARTIFACT", "id > 3", "name", "False")
    for key in (17, "model-7", ""):
        assert decode_page_token(encode_page_token(fingerprint, key, 42), fingerprint) == (key, 42)


def test_another_query_or_an_edit_is_refused() -> None:
    mine = query_fingerprint("ARTIFACT", "id > 3")
    token = encode_page_token(mine, 10, 10)
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, query_fingerprint("ARTIFACT", "id > 4"))
    assert caught.value.field == "page_token" and caught.value.reason == "PAGE_TOKEN_MISMATCH"
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body["p"] = [1000, 1000]
    edited = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(InvalidArgument):
        decode_page_token(edited, mine)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "e30",
        "W10",
        "x" * 5000,
        base64.b64encode(b'{"v":1,"p":[true,1],"h":"x"}').decode(),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, query_fingerprint("x"))
    assert caught.value.field == "page_token"
