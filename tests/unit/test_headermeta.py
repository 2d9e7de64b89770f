from hypothesis import given
from hypothesis import strategies as st

from failover.headermeta import decode_value, encode_value


@given(st.text(max_size=200).filter(lambda s: "\r" not in s and "\n" not in s))
def test_round_trip(value: str) -> None:
    encoded = encode_value(value)
    assert all(" " <= c <= "~" for c in encoded)
    assert encoded == encoded.strip()
    assert decode_value(encoded) == value


def test_plain_values_are_left_alone() -> None:
    assert encode_value("image/png; q=1") == "image/png; q=1"
    assert decode_value("=?UTF-8?Q?Z=C3=BCrich?=") == "Zürich"  # what S3 itself returns
