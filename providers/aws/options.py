"""Options of the AWS family's adapters (ec2 compute, route53 DNS, the account inventory)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from failover.dns import NameserverAddress

__all__ = ["AwsOptions", "Route53Options"]


class AwsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    subnet_id: str | None = Field(default=None, description="subnet for new instances (default VPC otherwise)")
    security_group_prefix: str = Field(default="failover", description="name prefix of security groups it creates")


class Route53Options(AwsOptions):
    nameserver: NameserverAddress = None
