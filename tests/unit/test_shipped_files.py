"""Files the project ships are valid: the compose providers file has the lab's shape."""

from pathlib import Path

import yaml

from failover.config import load_providers

REPO = Path(__file__).resolve().parents[2]


def test_compose_providers_file_has_the_lab_shape() -> None:
    providers = load_providers(REPO / "localstack" / "providers-compose.yaml")
    providers.validate_all()
    assert set(providers.names) == {"aws", "aws-west", "onprem", "onprem-libcloud", "azure", "swift", "disk"}
    assert providers.spec("onprem", "storage").options.vendor == "minio"
    # The same services as the embedded lab's providers file.
    assert providers.services("aws") == ["storage", "compute", "dns", "account"]
    assert providers.services("onprem") == ["storage", "compute", "dns"]
    assert providers.spec("onprem", "dns").options.nameserver == "127.0.0.1:5353"


def test_compose_files_bind_loopback_only() -> None:
    for name in ("docker-compose.yml", "docker-compose.cluster.yml"):
        compose = yaml.safe_load((REPO / "localstack" / name).read_text())
        for service in compose["services"].values():
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), (name, port)
    cluster = yaml.safe_load((REPO / "localstack" / "docker-compose.cluster.yml").read_text())
    workers = [s for n, s in cluster["services"].items() if n.startswith("dask-worker")]
    assert len(workers) == 2 and all("failover[cluster]" in " ".join(w["command"]) for w in workers)
    # Credentials are passed through from the environment, never written in the file.
    assert all(value.startswith("${") for w in workers for value in w["environment"].values())


def test_adapter_data_files_load() -> None:
    from failover.providers.aws.compute import catalog_data
    from failover.providers.libcloud.compute import compute_profiles
    from failover.providers.libcloud.storage import driver_profiles
    from failover.providers.s3.vendors import vendor_names, vendor_profile

    assert len(catalog_data().sizes) > 10
    assert {"ec2", "openstack", "digitalocean", "gce", "azure_arm", "linode"} <= set(compute_profiles())
    assert compute_profiles()["ec2"].tested
    # libcloud spells user-data differently per driver; the profiles keep that out of the code.
    spellings = {name: p.create.user_data for name, p in compute_profiles().items() if p.create.user_data}
    assert spellings["ec2"] == "ex_userdata"
    assert spellings["digitalocean"] == "ex_user_data"
    assert spellings["azure_arm"] == "ex_customdata"
    assert spellings["gce"] == "ex_metadata.startup-script"
    assert "minio" in driver_profiles()
    from failover.providers.libcloud.dns import dns_profiles

    assert dns_profiles()["powerdns"].tested and dns_profiles()["powerdns"].set_semantics == "replace"
    for vendor in vendor_names():
        vendor_profile(vendor).capabilities()


def test_ec2_instances_report_what_is_not_portable() -> None:
    """The adapter's own conversion of a DescribeInstances item (no server involved)."""
    from failover.providers.aws.compute import Ec2Compute
    from failover.providers.aws.options import AwsOptions

    from failover.compute import InstanceState

    compute = Ec2Compute("aws", client=None, options=AwsOptions())
    item = {
        "InstanceId": "i-1",
        "State": {"Name": "running"},
        "InstanceType": "t3.small",
        "ImageId": "ami-1",
        "Tags": [{"Key": "Name", "Value": "web-1"}],
        "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/app"},
        "Placement": {"GroupName": "cluster-1"},
    }
    instance = compute._to_instance(item, {})
    assert instance.state is InstanceState.RUNNING
    assert instance.name == "web-1"
    assert any("IAM instance profile" in note for note in instance.not_portable)
    assert any("placement group" in note for note in instance.not_portable)
