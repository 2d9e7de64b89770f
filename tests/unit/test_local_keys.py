from failover.providers.local.keys import NAME_MAX, escape_segment, key_to_parts, unescape_segment
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(min_size=1, max_size=300))
def test_every_key_maps_to_safe_names_and_back(key: str) -> None:
    parts = key_to_parts(key)
    for part in parts:
        assert part not in ("", ".", "..")
        assert "/" not in part
        assert "\0" not in part
        assert not part.endswith(("%meta", "%tmp"))
    assert "/".join(unescape_segment(p) or "" for p in parts) == key


@given(st.text(max_size=100))
def test_escaping_is_injective(segment: str) -> None:
    assert unescape_segment(escape_segment(segment)) == segment


def test_reserved_and_foreign_names_decode_to_nothing() -> None:
    assert unescape_segment("%meta") is None
    assert unescape_segment("%tmp") is None
    assert unescape_segment("50%") is None  # a file someone put there by hand
    assert unescape_segment("a%2Eb") is None  # not how "a.b" is written
    assert unescape_segment("%") == ""
    assert unescape_segment("%2E%2E") == ".."
    assert NAME_MAX == 255
