import pytest

from failover.errors import ConfigError
from failover.location import Location, parse_location


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws:", Location("aws")),
        ("aws:media", Location("aws", "media")),
        ("aws:media/2024/", Location("aws", "media", "2024/")),
        ("aws:media/a//b", Location("aws", "media", "a//b")),
    ],
)
def test_parse(text: str, expected: Location) -> None:
    assert parse_location(text) == expected
    assert str(parse_location(text)) == text


@pytest.mark.parametrize("text", ["aws", ":bucket", "aws:/prefix"])
def test_invalid(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_location(text)
