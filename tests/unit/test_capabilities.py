import pytest

from failover.capabilities import GIB, MIB, Capability, StoreLimits, key_shapes
from failover.errors import InvalidRequest


def test_part_size_grows_so_that_no_object_needs_more_than_max_parts() -> None:
    limits = StoreLimits()
    assert limits.part_size_for(100 * MIB, 8 * MIB) == 8 * MIB
    size = 5 * 1024 * GIB  # the largest S3 object
    part = limits.part_size_for(size, 8 * MIB)
    assert part % MIB == 0
    assert -(-size // part) <= 10_000
    assert limits.part_size_for(0, 8 * MIB) == 8 * MIB


def test_part_size_never_below_the_minimum() -> None:
    assert StoreLimits().part_size_for(10 * MIB, 1 * MIB) == 5 * MIB


def test_too_large_object_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        StoreLimits().part_size_for(6 * 1024 * GIB, 8 * MIB)


def test_key_limits() -> None:
    limits = StoreLimits(max_key_segment_bytes=255)
    limits.check_key("a" * 255 + "/" + "b" * 255)
    with pytest.raises(InvalidRequest):
        limits.check_key("a" * 256)
    with pytest.raises(InvalidRequest):
        limits.check_key("é" * 513)  # 1,026 bytes
    with pytest.raises(InvalidRequest):
        limits.check_key("")


@pytest.mark.parametrize(
    ("key", "shapes"),
    [
        ("a/b", []),
        ("a//b", [Capability.KEY_EMPTY_SEGMENTS]),
        ("/a", [Capability.KEY_EMPTY_SEGMENTS]),
        ("dir/", [Capability.KEY_TRAILING_SLASH]),
        ("a/./b", [Capability.KEY_DOT_SEGMENTS]),
        ("../x", [Capability.KEY_DOT_SEGMENTS]),
        ("a..b/.c", []),
    ],
)
def test_key_shapes(key: str, shapes: list[Capability]) -> None:
    assert key_shapes(key) == shapes


def test_bucket_names() -> None:
    limits = StoreLimits()
    assert limits.valid_bucket_name("media-2024.backup")
    for bad in ("UPPER", "a", "under_score", "-lead", "1.2.3.4", "a..b", "xn--punycode"):
        assert not limits.valid_bucket_name(bad), bad
