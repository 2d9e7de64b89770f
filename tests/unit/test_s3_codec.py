"""The s3 adapter's one metadata codec: what a source returned can never become a second header
on the target request (a Content-Type holding CRLF once went on the wire as its own
``x-amz-acl: public-read``)."""

from __future__ import annotations

import pytest
from failover.providers.s3.codec import check_header, meta_from_headers, meta_to_headers

from failover.errors import InvalidRequest
from failover.types import ObjectMeta

INJECTION = "text/plain\r\nx-amz-acl: public-read"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (INJECTION, "a line break"),
        ("text/plain\nx-amz-acl: public-read", "a line break"),
        ("text/plain\rx", "a line break"),
        ("text/plain\x00x", "a control character"),
        ("text/plain\x1bx", "a control character"),
        ("text/plain; name=café", "non-ASCII text"),
        ("text/plain\x85", "non-ASCII text"),
    ],
)
def test_header_values_that_cannot_go_on_the_wire_are_refused(value: str, kind: str) -> None:
    with pytest.raises(InvalidRequest, match=kind) as refused:
        check_header("content-type", value)
    assert "not sent" in refused.value.message


@pytest.mark.parametrize("name", ["x-amz-meta-a\r\nx-amz-acl", "x-amz-meta-a b", "x-amz-meta-é", ""])
def test_header_names_that_are_not_tokens_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid HTTP header name"):
        check_header(name, "v")


@pytest.mark.parametrize(
    "field", ["content_type", "cache_control", "content_disposition", "content_encoding", "content_language"]
)
def test_hostile_standard_metadata_is_refused_before_the_request(field: str) -> None:
    with pytest.raises(InvalidRequest, match="line break"):
        meta_to_headers(ObjectMeta(**{field: INJECTION}))  # type: ignore[arg-type]


def test_user_metadata_carries_any_text_encoded_and_comes_back_the_same() -> None:
    user = {"note": INJECTION, "city": "Zürich", "tab": "a\tb", "nul": "a\x00b", "plain": "as is"}
    headers = meta_to_headers(ObjectMeta(user=user))
    assert all("\r" not in v and "\n" not in v and "\x00" not in v and v.isascii() for v in headers.values())
    assert headers["x-amz-meta-plain"] == "as is"
    assert "x-amz-acl" not in headers
    assert meta_from_headers(headers).user == user


def test_hostile_user_metadata_names_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="not a valid HTTP header name"):
        meta_to_headers(ObjectMeta(user={"a\r\nx-amz-acl": "public-read"}))
