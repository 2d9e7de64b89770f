"""Shard planning (failover/cluster/shards.py) on the in-process memory store: whatever the keys,
the shards partition the listing exactly (every key in one shard, none in two), and nested, flat
and non-ASCII key spaces split into several shards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.cluster import parse_cluster
from failover.cluster.shards import Shard, plan_shards
from failover.errors import ConfigError
from failover.storage import ObjectStore
from failover.testing.memory import MemoryOptions, MemoryStore

_spaces = iter(range(10**9))
KEY_CHARACTERS = st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs",))


def store_with(keys: set[str]) -> MemoryStore:
    store = MemoryStore("mem", MemoryOptions(space=f"shards-{next(_spaces)}"))
    store.create_bucket("bkt")
    for key in keys:
        store.put("bkt", key, b"x")
    return store


def in_shard(store: ObjectStore, prefix: str, shard: Shard) -> Iterator[str]:
    """What cluster/tasks.py's list_shard yields for ``shard``."""
    for info in store.list_objects("bkt", prefix, start_after=shard.after):
        if shard.upto is not None and info.key.encode() > shard.upto.encode():
            return
        yield info.key


def covered(store: ObjectStore, prefix: str, shards: list[Shard]) -> list[str]:
    return [key for shard in shards for key in in_shard(store, prefix, shard)]


@pytest.mark.parametrize(
    ("keys", "least"),
    [
        ({f"obj-{n:07d}" for n in range(0, 100_000, 97)}, 6),
        ({f"{d}/{n:04d}.jpg" for d in ("a", "b", "c", "posts", "été", "日本") for n in range(150)}, 4),
        ({f"users/{n:05d}/avatar.png" for n in range(800)}, 6),
    ],
    ids=["flat", "nested", "deep"],
)
def test_key_spaces_split_into_shards_that_cover_every_key_once(keys: set[str], least: int) -> None:
    store = store_with(keys)
    shards = plan_shards(store, "bkt", "", 8)
    assert len(shards) >= least, shards
    listed = covered(store, "", shards)
    assert sorted(listed) == sorted(keys) and len(listed) == len(set(listed))
    biggest = max(sum(1 for _ in in_shard(store, "", s)) for s in shards)
    assert biggest <= len(keys) / 2, "no shard holds most of the keys"


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(
        st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=("Cs",)), min_size=1, max_size=12
        ),
        max_size=60,
    ),
    prefix=st.sampled_from(["", "a", "é"]),
    count=st.integers(1, 12),
)
def test_shards_partition_any_listing(keys: set[str], prefix: str, count: int) -> None:
    store = store_with(keys)
    expected = sorted(k for k in keys if k.startswith(prefix))
    listed = covered(store, prefix, plan_shards(store, "bkt", prefix, count))
    assert sorted(listed) == expected and len(listed) == len(set(listed))


def test_cluster_specs() -> None:
    assert parse_cluster("local:2").workers == 2
    assert parse_cluster("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "local:x", "local:65", "http://h:1", "tcp://h", "tcp://h:99999"):
        with pytest.raises(ConfigError):
            parse_cluster(bad)


def playbook(cluster: str) -> str:
    return f"""\
version: 1
name: on-a-cluster
description: sync and verify on a Dask cluster
steps:
  - id: copy
    kind: sync
    source: "aws:media"
    target: "onprem:media"
    cluster: "{cluster}"
  - id: prove
    kind: verify
    source: "aws:media"
    target: "onprem:media"
    cluster: "{cluster}"
    needs: [copy]
"""


def test_the_playbook_steps_take_a_cluster_and_refuse_a_wrong_one() -> None:
    from failover.errors import PlaybookError
    from failover.playbook import load_playbook_text

    loaded = load_playbook_text(playbook("local:2"), "play.yaml")
    assert [getattr(step, "cluster", None) for step in loaded.playbook.steps] == ["local:2", "local:2"]
    with pytest.raises(PlaybookError) as refused:
        load_playbook_text(playbook("local:many"), "play.yaml")
    assert "play.yaml:9:5: steps.0.cluster (step 'copy'): cluster 'local:many': N must be" in refused.value.message


def test_the_synthetic_bucket_lists_like_a_stored_one() -> None:
    """The memory adapter's synthetic bucket (bench/cluster_bench.py's 10M listing): byte order,
    start_after and prefixes as the listing contract says, and shards that cover it exactly."""
    store = MemoryStore("mem", MemoryOptions(space=f"synthetic-{next(_spaces)}", synthetic=2500))
    keys = [info.key for info in store.list_objects("synthetic")]
    assert keys == [f"obj-{n:010d}" for n in range(2500)]
    listed = store.list_objects("synthetic", "obj-00000001", start_after="obj-0000000105")
    assert [i.key for i in listed] == [f"obj-{n:010d}" for n in range(106, 200)]
    assert store.head("synthetic", "obj-0000000042").size == 1024
    shards = plan_shards(store, "synthetic", "", 6)
    assert len(shards) >= 4 and covered_keys(store, "synthetic", shards) == keys


def covered_keys(store: ObjectStore, bucket: str, shards: list[Shard]) -> list[str]:
    found = []
    for shard in shards:
        for info in store.list_objects(bucket, "", start_after=shard.after):
            if shard.upto is not None and info.key.encode() > shard.upto.encode():
                break
            found.append(info.key)
    return found


def test_a_parts_digest_is_what_the_bytes_make_and_never_a_plain_one() -> None:
    import hashlib
    import os

    from failover.sync.digests import PartsDigest, digest_like, is_parts_digest, parts_digest_of

    data = os.urandom(3 * 1000 + 17)
    parts = [hashlib.sha256(data[i : i + 1000]).hexdigest() for i in range(0, len(data), 1000)]
    value = parts_digest_of("sha256", 1000, parts)
    streamed = digest_like("sha256", value)
    for start in range(0, len(data), 333):  # fed in pieces that straddle the part boundaries
        streamed.update(data[start : start + 333])
    assert streamed.hexdigest() == value and is_parts_digest(value)
    assert value != hashlib.sha256(data).hexdigest() and not is_parts_digest(hashlib.sha256(data).hexdigest())
    exact = PartsDigest("sha256", 1000)
    exact.update(data[:2000])
    assert exact.hexdigest() == parts_digest_of("sha256", 1000, parts[:2]), "no empty part after a full one"
