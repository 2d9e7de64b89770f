"""The local store keeps every key inside its root: traversal, absolute keys and planted symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from failover.providers.local import LocalStore
from failover.providers.local.options import LocalStoreOptions

from failover.errors import InvalidRequest, NotFound


@pytest.fixture
def layout(tmp_path: Path) -> tuple[LocalStore, Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("do not read")
    store = LocalStore("disk", LocalStoreOptions(root=str(root)))
    store.create_bucket("bkt")
    return store, root, outside


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize("key", ["../escape", "../../escape", "/etc/passwd", "a/../../x", "..", ".", "./x"])
def test_traversal_keys_stay_inside_the_bucket(layout: tuple[LocalStore, Path, Path], key: str) -> None:
    store, root, outside = layout
    before = files_under(root.parent)
    store.put("bkt", key, b"contained")
    assert store.get_bytes("bkt", key) == b"contained"
    created = files_under(root.parent) - before
    assert created, "something was written"
    assert all(name.startswith("root/bkt/") for name in created), created
    assert [i.key for i in store.list_objects("bkt")] == [key]
    assert files_under(outside) == {"secret.txt"}


def test_a_planted_directory_symlink_is_never_followed(layout: tuple[LocalStore, Path, Path]) -> None:
    store, root, outside = layout
    os.symlink(outside, root / "bkt" / "link")
    with pytest.raises(InvalidRequest, match="symlink"):
        store.get_bytes("bkt", "link/secret.txt")
    with pytest.raises(InvalidRequest, match="symlink"):
        store.put("bkt", "link/new.txt", b"x")
    with pytest.raises(InvalidRequest, match="symlink"):
        store.head("bkt", "link/secret.txt")
    assert list(store.list_objects("bkt")) == []
    assert files_under(outside) == {"secret.txt"}


def test_a_planted_file_symlink_is_never_read_or_written_through(layout: tuple[LocalStore, Path, Path]) -> None:
    store, root, outside = layout
    os.symlink(outside / "secret.txt", root / "bkt" / "leak.txt")
    with pytest.raises(InvalidRequest):
        store.get_bytes("bkt", "leak.txt")
    store.put("bkt", "leak.txt", b"replaced")  # the link itself is replaced, the target untouched
    assert (outside / "secret.txt").read_text() == "do not read"
    assert not (root / "bkt" / "leak.txt").is_symlink()


def test_a_symlinked_bucket_is_refused(layout: tuple[LocalStore, Path, Path]) -> None:
    store, root, outside = layout
    os.symlink(outside, root / "linked")
    with pytest.raises(InvalidRequest, match="symlink"):
        store.bucket_exists("linked")
    with pytest.raises(InvalidRequest):
        store.get_bytes("linked", "secret.txt")
    assert "linked" not in [b.name for b in store.list_buckets()]


def test_invalid_bucket_names_never_reach_the_filesystem(layout: tuple[LocalStore, Path, Path]) -> None:
    store, _, _ = layout
    for bucket in ("..", "../outside", "/tmp", "a/b"):
        with pytest.raises((NotFound, InvalidRequest)):
            store.get_bytes(bucket, "secret.txt")
        with pytest.raises(InvalidRequest):
            store.create_bucket(bucket)


def test_interrupted_writes_leave_nothing_half_written(layout: tuple[LocalStore, Path, Path]) -> None:
    store, root, _ = layout

    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("source went away")
            return b"x" * 1000

    store.put("bkt", "obj", b"original")
    with pytest.raises(Exception, match="source went away"):
        store.put("bkt", "obj", Failing(), size=10_000)
    assert store.get_bytes("bkt", "obj") == b"original"
    assert list((root / "bkt" / "%tmp").iterdir()) == []
