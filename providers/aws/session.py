"""boto3 clients for the AWS family, built from a service spec (credentials by reference only)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from failover.config import ServiceSpec

from .errors import converted
from .options import AwsOptions

__all__ = ["client_for"]


def client_for(spec: ServiceSpec, service: str, *, region: str | None = None) -> Any:
    """A boto3 client for ``service`` at the spec's endpoint and region. Retries are off: failover's
    own policy retries (and reports) them."""
    options: AwsOptions = spec.options
    creds = spec.credentials()
    config = Config(
        region_name=region or spec.region or "us-east-1",
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        user_agent_extra="failover",
    )
    verify: bool | str | None = spec.ca_bundle or (None if spec.verify_tls else False)
    with converted("connect"):
        session = boto3.Session(
            profile_name=creds.profile,
            aws_access_key_id=creds.key,
            aws_secret_access_key=creds.secret.reveal() if creds.secret else None,
            aws_session_token=creds.token.reveal() if creds.token else None,
        )
        client: Any = session.client(service, endpoint_url=spec.endpoint, config=config, verify=verify)  # type: ignore[call-overload]
        return client
