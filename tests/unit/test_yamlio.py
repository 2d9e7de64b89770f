import pytest

from failover.yamlio import YamlError, load_yaml


def test_positions_are_recorded_for_keys_and_values() -> None:
    loaded = load_yaml("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yaml")
    assert loaded.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert loaded.locate(("a", "b")) == "f.yaml:2:3"
    assert loaded.locate(("a", "c", 1)) == "f.yaml:5:7"
    assert loaded.locate(("a", "missing", "deeper")) == "f.yaml:1:1"  # nearest existing ancestor


def test_duplicate_keys_are_an_error_with_their_line() -> None:
    with pytest.raises(YamlError) as raised:
        load_yaml("providers:\n  aws: {}\n  aws: {}\n", "p.yaml")
    assert raised.value.location == "p.yaml:3:3"
    assert "duplicate key 'aws'" in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['echo pwned']",
        "x: !!python/name:os.system",
        "x: !custom 1",
        "x: !!binary aGVsbG8=",
    ],
)
def test_only_plain_yaml_tags_are_accepted(text: str) -> None:
    with pytest.raises(YamlError, match="tag"):
        load_yaml(text, "t.yaml")


def test_alias_bomb_is_rejected() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 9):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(
            f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]"
        )
    with pytest.raises(YamlError, match="alias bomb"):
        load_yaml("\n".join(lines), "bomb.yaml")


def test_merge_keys_and_anchors_work() -> None:
    loaded = load_yaml("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n")
    assert loaded.data["child"] == {"x": 1, "y": 3}


def test_syntax_error_has_a_location() -> None:
    with pytest.raises(YamlError) as raised:
        load_yaml("a: [1, 2\nb: 3\n", "s.yaml")
    assert raised.value.location.startswith("s.yaml:")


def test_several_documents_are_refused() -> None:
    with pytest.raises(YamlError, match="one YAML document"):
        load_yaml("a: 1\n---\nb: 2\n")


def test_empty_document_is_none() -> None:
    assert load_yaml("").data is None
