"""Options of the AWS family's adapters (ec2 compute, route53 DNS, the account inventory)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from failover.dns import NameserverAddress

__all__ = ["AwsOptions", "Route53Options", "SqsFeedOptions"]


class AwsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    subnet_id: str | None = Field(default=None, description="subnet for new instances (default VPC otherwise)")
    security_group_prefix: str = Field(default="failover", description="name prefix of security groups it creates")


class Route53Options(AwsOptions):
    nameserver: NameserverAddress = None


class SqsFeedOptions(AwsOptions):
    """Options of the ``sqs`` change feed (S3 event notifications delivered to an SQS queue)."""

    queue: str = Field(
        default="failover-standby",
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="the queue the buckets' notifications go to (created by --setup-feed)",
    )
    notification_id: str = Field(
        default="failover-standby",
        description="the Id of the notification configuration failover adds to each bucket (and removes)",
    )
    batch: int = Field(default=10, ge=1, le=10, description="messages received per call (SQS allows 10)")
    parallel: int = Field(default=4, ge=1, le=16, description="calls at once while the queue has more (a backlog)")
    visibility_timeout: int = Field(
        default=120, ge=5, le=43200, description="seconds a received event is hidden before it is delivered again"
    )
