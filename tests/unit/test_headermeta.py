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


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@given(st.text(min_size=1, max_size=60), st.sampled_from([str.lower, str.upper, str.title]))
def test_header_token_round_trip_survives_case_folding_and_underscores(name: str, fold: object) -> None:
    from failover.headermeta import decode_header_token, encode_header_token

    encoded = encode_header_token(name)
    assert set(encoded) <= _TOKEN_CHARS, "a valid header-name token"
    assert "_" not in encoded, "WSGI servers conflate '_' with '-'"
    assert decode_header_token(fold(encoded)) == name  # type: ignore[operator]


def test_header_token_keeps_plain_names_readable() -> None:
    from failover.headermeta import decode_header_token, encode_header_token

    assert encode_header_token("cost-centre") == "cost-centre"
    assert encode_header_token("Cost_Centre") == "%43ost%5F%43entre"
    assert decode_header_token("Team") == "team"  # metadata another tool wrote, as the server returns it
