"""The ``aws`` account inspector: services of an AWS account that have no portable equivalent, and
its Route53 zones, for ``failover inventory``. Read-only."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from failover.config import ServiceSpec
from failover.errors import FailoverError
from failover.inventory import NonPortable

from .errors import converted
from .options import AwsOptions
from .session import client_for

__all__ = ["AwsAccount"]


def _names(items: list[Any], key: str | None = None) -> list[str]:
    return [str(item[key] if key else item) for item in items]


class AwsAccount:
    options_model = AwsOptions

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self._clients: dict[str, Any] = {}

    @classmethod
    def from_spec(cls, spec: ServiceSpec) -> AwsAccount:
        return cls(spec)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = client_for(self.spec, service)
        return self._clients[service]

    def _checks(self) -> list[tuple[str, str, Callable[[], list[tuple[str, str]]]]]:
        """(service, kind, lister) for every service failover knows has no portable equivalent."""

        def lam() -> list[tuple[str, str]]:
            found = []
            for page in self._client("lambda").get_paginator("list_functions").paginate():
                found += [(f["FunctionName"], f.get("Runtime", "")) for f in page.get("Functions", [])]
            return found

        def simple(
            service: str, call: str, key: str, field: str | None = None, *, last_part: bool = False
        ) -> Callable[[], list[tuple[str, str]]]:
            """List with ``call``; ``last_part`` keeps only the end of a URL or ARN."""

            def run() -> list[tuple[str, str]]:
                items = getattr(self._client(service), call)().get(key, []) or []
                names = _names(items, field)
                return [(n.rsplit("/", 1)[-1].rsplit(":", 1)[-1] if last_part else n, "") for n in names]

            return run

        def cognito() -> list[tuple[str, str]]:
            pools = self._client("cognito-idp").list_user_pools(MaxResults=60).get("UserPools", [])
            return [(p["Name"], p["Id"]) for p in pools]

        return [
            ("lambda", "function", lam),
            ("dynamodb", "table", simple("dynamodb", "list_tables", "TableNames")),
            ("sqs", "queue", simple("sqs", "list_queues", "QueueUrls", last_part=True)),
            ("sns", "topic", simple("sns", "list_topics", "Topics", "TopicArn", last_part=True)),
            ("kinesis", "stream", simple("kinesis", "list_streams", "StreamNames")),
            ("secretsmanager", "secret", simple("secretsmanager", "list_secrets", "SecretList", "Name")),
            ("cloudformation", "stack", simple("cloudformation", "list_stacks", "StackSummaries", "StackName")),
            ("cognito-idp", "user pool", cognito),
            ("rds", "database", simple("rds", "describe_db_instances", "DBInstances", "DBInstanceIdentifier")),
            ("ecs", "cluster", simple("ecs", "list_clusters", "clusterArns", last_part=True)),
            ("apigateway", "REST API", simple("apigateway", "get_rest_apis", "items", "name")),
        ]

    def non_portable(self) -> tuple[list[NonPortable], list[str]]:
        found: list[NonPortable] = []
        unchecked: list[str] = []
        checks = self._checks()
        for service in dict.fromkeys(s for s, _, _ in checks):
            self._client(service)  # built here: botocore's client creation is not thread-safe

        def run(lister: Callable[[], list[tuple[str, str]]], service: str) -> list[tuple[str, str]]:
            with converted(f"list {service}"):
                return lister()

        # Eleven services, each a round trip or two: asked at once.
        with concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="inventory") as pool:
            futures = [(service, kind, pool.submit(run, lister, service)) for service, kind, lister in checks]
        for service, kind, future in futures:
            try:
                items = future.result()
            except FailoverError as error:
                unchecked.append(f"{service}: {error.message.splitlines()[0][:160]}")
                continue
            found += [NonPortable(service, kind, name, detail) for name, detail in items]
        return found, unchecked

    def identity(self) -> str:
        with converted("get_caller_identity"):
            found = self._client("sts").get_caller_identity()
        return f"{found.get('Account', '?')} ({found.get('Arn', '?')})"

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
