"""httpx exceptions and PowerDNS API error responses -> failover errors. The only place in this
adapter that knows httpx's exceptions."""

from __future__ import annotations

from typing import Any

import httpx

from failover.errors import ConnectionLost, FailoverError, ProviderError, Timeout, converter

from ..http_errors import CodeTable, untrusted_certificate

__all__ = ["ApiError", "converted", "translate"]


class ApiError(Exception):
    """A response with an error status, as the API sent it."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            message = str(response.json().get("error") or response.reason_phrase)
        except ValueError:
            message = response.text[:200] or response.reason_phrase
        super().__init__(message)
        self.status = response.status_code
        self.headers = dict(response.headers)
        self.message = message


TABLE = CodeTable(
    conflict=frozenset({"Conflict"}),
    hints={
        "401": "the API key is wrong (the server's api-key setting)",
        "403": "this client's address is not in the server's webserver-allow-from",
    },
)


def translate(exc: BaseException, *, operation: str = "", target: str = "") -> FailoverError:
    common: dict[str, Any] = {"operation": operation, "target": target}
    if isinstance(exc, ApiError):
        # PowerDNS answers 409 for a zone that exists and 422 for a request it cannot apply.
        code = {409: "Conflict"}.get(exc.status, str(exc.status))
        return TABLE.classify(code, exc.status, exc.message, exc.headers, **common)
    refused = untrusted_certificate(exc, **common)
    if refused is not None:
        return refused
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(str(exc) or "timed out", **common)
    if isinstance(exc, httpx.TransportError):
        return ConnectionLost(str(exc) or type(exc).__name__, **common)
    if isinstance(exc, httpx.HTTPError):
        return ProviderError(str(exc), **common)
    raise exc


converted = converter((httpx.HTTPError, ApiError), translate)
"""Wrap every API call: ``with converted("list_zones"): ...``."""
