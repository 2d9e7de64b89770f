import pytest

from failover.capabilities import StoreLimits
from failover.errors import ConfigError
from failover.location import parse_location
from failover.sync.plan import map_bucket_name, plan_buckets
from failover.sync.throttle import Bandwidth, parse_rate

valid = StoreLimits().valid_bucket_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("media", "media"),
        ("Media_Uploads", "media-uploads"),
        ("a", "a-bucket"),
        ("UPPER..dots", "upper.dots"),
        ("x" * 80, "x" * 56),
    ],
)
def test_bucket_names_are_mapped_to_valid_ones(name: str, expected: str) -> None:
    assert map_bucket_name(name, valid, set()) == expected
    assert valid(map_bucket_name(name, valid, set()))


def test_collisions_after_cleaning_get_a_hash() -> None:
    taken: set[str] = set()
    first = map_bucket_name("My_Bucket", valid, taken)
    taken.add(first)
    second = map_bucket_name("my-bucket", valid, taken)
    assert first == "my-bucket"
    assert second != first
    assert valid(second)


def test_every_bucket_to_every_bucket() -> None:
    pairs = plan_buckets(parse_location("gcs:"), parse_location("onprem:"), ["b", "Photos_2024"], valid, {"b": "bee"})
    assert [(p.src_bucket, p.dst_bucket, p.mapped_because) for p in pairs] == [
        ("Photos_2024", "photos-2024", "invalid on the target"),
        ("b", "bee", "--bucket-map"),
    ]


def test_prefix_mapping() -> None:
    (pair,) = plan_buckets(parse_location("aws:media/2024/"), parse_location("onprem:archive/old/"), ["media"], valid)
    assert pair.dst_key("2024/cat.jpg") == "old/cat.jpg"
    assert pair.src_key("old/cat.jpg") == "2024/cat.jpg"
    (same,) = plan_buckets(parse_location("aws:media/2024/"), parse_location("onprem:"), ["media"], valid)
    assert (same.dst_bucket, same.dst_key("2024/a")) == ("media", "2024/a")


def test_account_to_single_bucket_is_refused() -> None:
    with pytest.raises(ConfigError, match="whole account"):
        plan_buckets(parse_location("aws:"), parse_location("onprem:one"), ["a", "b"], valid)


def test_invalid_explicit_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        plan_buckets(parse_location("aws:"), parse_location("onprem:"), ["a"], valid, {"a": "Bad_Name"})


@pytest.mark.parametrize(("text", "rate"), [("50M", 50 * 2**20), ("512k", 512 * 1024), ("1G", 2**30), ("100", 100)])
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1M", "0"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_rate(text)


def test_bandwidth_without_limit_never_waits() -> None:
    Bandwidth(None).take(10**12)
