"""The DNS conformance suite against LocalStack's Route53 (the lab's ``aws``), through boto3."""

from tests.conformance.dns import DnsConformance


class TestRoute53OnLocalStack(DnsConformance):
    provider = "aws"
