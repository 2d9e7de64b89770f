from failover.compute import Catalog, ComputeCapabilities, ComputeCapability, Image, ImageRef, InstanceSpec, Size
from failover.rehost.mapping import choose_image, choose_size, translate

SIZES = (
    Size("small", 2, 2048, price_per_hour=0.02),
    Size("medium", 2, 4096, price_per_hour=0.04),
    Size("fast", 4, 4096, price_per_hour=0.08),
    Size("cheap-big", 4, 8192, price_per_hour=0.05),
    Size("unpriced", 8, 16384),
    Size("gpu", 4, 16384, gpus=1, price_per_hour=0.5),
    Size("arm", 2, 2048, arch="arm64", price_per_hour=0.01),
)
IMAGES = (Image("ami-u16", "ubuntu", "16.04"), Image("ami-u22", "ubuntu", "22.04"), Image("ami-d12", "debian", "12"))


def spec(**kw: object) -> InstanceSpec:
    return InstanceSpec(**{"name": "x", "vcpus": 2, "memory_mib": 2048, **kw})  # type: ignore[arg-type]


def test_cheapest_size_that_meets_the_spec() -> None:
    assert choose_size(spec(), SIZES) == (SIZES[0], [])
    assert choose_size(spec(vcpus=4, memory_mib=4096), SIZES)[0].id == "cheap-big"  # cheaper than "fast"
    assert choose_size(spec(vcpus=4, memory_mib=4096, gpus=1), SIZES)[0].id == "gpu"
    assert choose_size(spec(arch="arm64"), SIZES)[0].id == "arm"


def test_unknown_prices_come_after_known_ones() -> None:
    assert choose_size(spec(vcpus=8, memory_mib=16384), SIZES)[0].id == "unpriced"  # the only fit
    assert choose_size(spec(vcpus=2, memory_mib=2048), (Size("free?", 2, 2048), SIZES[0]))[0].id == "small"


def test_nearest_size_with_the_shortfall_spelled_out() -> None:
    size, shortfall = choose_size(spec(vcpus=16, memory_mib=65536), SIZES)
    assert size is not None and size.id == "unpriced"
    assert shortfall == ["8 vCPU instead of 16", "16384 MiB memory instead of 65536"]
    assert choose_size(spec(arch="riscv64"), SIZES) == (None, [])


def test_images_by_os_and_version() -> None:
    catalog = Catalog(SIZES, IMAGES)
    assert choose_image(ImageRef("ubuntu", "22.04"), "x86_64", catalog) == (IMAGES[1], [])
    image, notes = choose_image(ImageRef("ubuntu", "20.04"), "x86_64", catalog)
    assert image == IMAGES[1] and "22.04 instead" in notes[0]
    assert choose_image(ImageRef("centos", "7"), "x86_64", catalog)[0] is None
    assert choose_image(ImageRef(id="ami-d12"), "x86_64", catalog) == (IMAGES[2], [])
    assert choose_image(ImageRef(id="ami-other"), "x86_64", catalog)[0] is None


def test_translation_lists_every_loss() -> None:
    catalog = Catalog(SIZES, IMAGES, notes=("sizes are not enforced",))
    caps = ComputeCapabilities(frozenset({ComputeCapability.TAGS}))
    wanted = spec(
        image=ImageRef("ubuntu", "16.04"),
        user_data="#!/bin/sh",
        ports=(80,),
        ssh_keys=("ssh-ed25519 A",),
        tags={"a": "b"},
    )
    t = translate(wanted, ["IAM instance profile"], catalog, caps)
    assert t.creatable
    assert t.size is not None and t.size.id == "small"
    assert t.image is not None and t.image.id == "ami-u16"
    joined = " | ".join(t.losses)
    for expected in (
        "IAM instance profile",
        "user-data not run",
        "ports 80",
        "SSH keys not installed",
        "sizes are not enforced",
    ):
        assert expected in joined
    blocked = translate(spec(arch="riscv64"), [], catalog, caps)
    assert not blocked.creatable and blocked.problems


def test_ec2_features_no_other_provider_carries_are_named() -> None:
    # LocalStack's EC2 neither attaches instance profiles nor keeps placement groups, so the
    # reading of these DescribeInstances fields is checked here on a recorded item's shape.
    from failover.providers.aws.compute import instance_notes

    item = {
        "InstanceId": "i-1",
        "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/app"},
        "Placement": {"AvailabilityZone": "us-east-1a", "GroupName": "low-latency"},
        "EbsOptimized": True,
    }
    notes = instance_notes(item)
    assert any("IAM instance profile" in n for n in notes)
    assert "placement group" in notes
    assert "EBS-optimised networking" in notes
    assert instance_notes({"InstanceId": "i-2", "Placement": {"AvailabilityZone": "us-east-1a"}}) == []
