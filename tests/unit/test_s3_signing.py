"""The s3 adapter's SigV4 signer produces exactly botocore's Authorization header (botocore is the
reference implementation; the signer exists only because botocore's costs 5x the CPU per request,
see providers/s3/signing.py)."""

from __future__ import annotations

import datetime
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from failover.providers.s3.signing import EMPTY_SHA256, UNSIGNED_PAYLOAD, Credentials, Signer, quote

NOW = datetime.datetime(2026, 12, 1, 12, 34, 56, tzinfo=datetime.UTC)

CASES = [
    ("GET", "/bucket/a/%C3%A9t%C3%A9/k%2Bey%20x.txt", {}, {}, EMPTY_SHA256),
    (
        "GET",
        "/bucket",
        {"list-type": "2", "prefix": "été/", "start-after": "a b+c", "max-keys": "1000"},
        {},
        EMPTY_SHA256,
    ),
    (
        "PUT",
        "/bucket/k",
        {"partNumber": "3", "uploadId": "abc/def=="},
        {"x-amz-checksum-crc32c": "AAAAAA=="},
        UNSIGNED_PAYLOAD,
    ),
    (
        "PUT",
        "/bucket/k",
        {},
        {"content-type": "text/plain;  charset=utf-8", "x-amz-meta-owner": "  ops  team ", "content-length": "5"},
        UNSIGNED_PAYLOAD,
    ),
    ("POST", "/bucket/k", {"uploads": ""}, {"x-amz-tagging": "a=b&c=d"}, EMPTY_SHA256),
]


@pytest.mark.parametrize(("method", "path", "query", "headers", "payload"), CASES)
@pytest.mark.parametrize("token", [None, "session-token-xyz"])
def test_same_signature_as_botocore(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: str, token: str | None
) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = dict(headers)
    Signer("eu-west-1", lambda: creds).sign(method, "127.0.0.1:9000", path, query, ours, payload, now=NOW.timestamp())

    # https, so botocore signs the payload only when asked to (over http it always hashes the body).
    url = (
        "https://127.0.0.1:9000"
        + path
        + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()) if query else "")
    )
    request = botocore.awsrequest.AWSRequest(method, url, headers=dict(headers))
    request.context["client_config"] = botocore.config.Config(
        s3={"payload_signing_enabled": payload != UNSIGNED_PAYLOAD}
    )
    reference = botocore.auth.S3SigV4Auth(
        botocore.credentials.Credentials(creds.access_key, creds.secret_key, token), "s3", "eu-west-1"
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        reference.add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
