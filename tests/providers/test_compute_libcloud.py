"""The compute conformance suite through libcloud's EC2 driver, against LocalStack's us-west-2, plus
a check with plain boto3 that libcloud's own argument names carried the spec (the driver cannot
read user-data back, so the conformance suite cannot see it)."""

from __future__ import annotations

import base64
import uuid

from failover.lab import LabInfo

from failover.compute import ImageRef, InstanceSpec, InstanceState
from failover.config import Providers
from failover.connect import open_compute
from failover.rehost.mapping import choose_image, choose_size
from tests.conformance.compute import ComputeConformance
from tests.helpers import raw_client


class TestLibcloudEc2DriverOnLocalStack(ComputeConformance):
    provider = "aws-west"


def test_spec_reaches_the_server_under_the_drivers_argument_names(lab: LabInfo, lab_providers: Providers) -> None:
    compute = open_compute(lab_providers, "aws-west")
    script = "#!/bin/bash\necho from-libcloud\n"
    spec = InstanceSpec(
        f"lc-{uuid.uuid4().hex[:6]}", 2, 2048, image=ImageRef("ubuntu", "22.04"), user_data=script, tags={"team": "a"}
    )
    catalog = compute.catalog()
    size, _ = choose_size(spec, catalog.sizes)
    image, _ = choose_image(spec.image, spec.arch, catalog)
    assert size is not None and image is not None
    instance = compute.create(spec, size=size.id, image=image.id, client_token=uuid.uuid4().hex)
    try:
        compute.wait_for(instance.id, InstanceState.RUNNING, timeout=60)
        ec2 = raw_client(lab, "aws-west", "ec2")
        described = ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]
        assert described["InstanceType"] == size.id
        assert described["ImageId"] == image.id
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        assert tags["Name"] == spec.name and tags["team"] == "a"
        attribute = ec2.describe_instance_attribute(InstanceId=instance.id, Attribute="userData")
        assert base64.b64decode(attribute["UserData"]["Value"]).decode() == script
        # us-west-2 only: the instance is not in the aws provider's region.
        east = raw_client(lab, "aws", "ec2")
        east_ids = [i["InstanceId"] for r in east.describe_instances()["Reservations"] for i in r["Instances"]]
        assert instance.id not in east_ids
    finally:
        compute.destroy(instance.id)
        compute.close()
