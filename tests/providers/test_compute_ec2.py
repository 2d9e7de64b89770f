"""The compute conformance suite against LocalStack's EC2 (the lab's ``aws``), through boto3."""

from tests.conformance.compute import ComputeConformance


class TestEc2OnLocalStack(ComputeConformance):
    provider = "aws"
