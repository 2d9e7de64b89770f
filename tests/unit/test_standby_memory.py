"""The standby loop in this process, on memory stores and the memory change feed: it follows
writes, overwrites and (with the flag, after the delay) deletes; catches what a feed missed at its
reconciliation; falls back to listings when the feed is gone; backs off from an outage and reports
the gap; a restart over the same journal copies nothing it verified."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from failover import commands
from failover.config import Providers, load_providers
from failover.errors import ConfigError, ConnectionLost
from failover.standby import PendingDeletes, StandbyOptions, StandbyStatus, read_status, status_is_fresh
from failover.sync import SyncOptions
from failover.testing import MemoryStore
from failover.testing.memory import MemoryFeed, MemoryFeedOptions
from failover.types import ObjectMeta


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Providers ``src`` (memory, with a feed of its space) and ``dst`` (memory), a bucket on src."""
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path / "state"))
    src_space, dst_space = f"sb-src-{uuid.uuid4().hex[:6]}", f"sb-dst-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "providers.yaml"
    path.write_text(
        f"""version: 1
providers:
  src:
    storage: {{type: memory, options: {{space: {src_space}, page_size: 5}}}}
    feed: {{type: memory, options: {{space: {src_space}}}}}
  plain:
    storage: {{type: memory, options: {{space: {src_space}, page_size: 5}}}}
  dst:
    storage: {{type: memory, options: {{space: {dst_space}}}}}
""",
        encoding="utf-8",
    )
    providers = load_providers(path)
    source = MemoryStore("source", _options(src_space))
    target = MemoryStore("target", _options(dst_space))
    source.create_bucket("media")
    yield {"providers": providers, "source": source, "target": target, "src_space": src_space, "tmp": tmp_path}
    MemoryStore.reset(src_space)
    MemoryStore.reset(dst_space)


def _options(space: str) -> Any:
    from failover.testing.memory import MemoryOptions

    return MemoryOptions(space=space)


def _put(store: MemoryStore, key: str, body: bytes) -> None:
    store.put("media", key, body, meta=ObjectMeta(content_type="text/plain"))


def _target_bytes(store: MemoryStore) -> dict[str, str]:
    if not store.bucket_exists("media"):
        return {}
    out = {}
    for info in store.list_objects("media"):
        with store.open("media", info.key) as reader:
            out[info.key] = hashlib.sha256(reader.read()).hexdigest()
    return out


class Running:
    """A standby in a thread; ``stop()`` ends it and returns its final status."""

    def __init__(self, providers: Providers, source: str, options: StandbyOptions) -> None:
        self.event = threading.Event()
        self.status: StandbyStatus | None = None
        self.error: BaseException | None = None
        self.notes: list[str] = []

        def run() -> None:
            try:
                self.status = commands.standby(
                    providers, source, "dst:media", options, stop=self.event, note=self.notes.append
                )
            except BaseException as error:
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> StandbyStatus:
        self.event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the standby did not stop within 10 s"
        if self.error is not None:
            raise self.error
        assert self.status is not None
        return self.status


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _standby_options(tmp: Path, **values: Any) -> StandbyOptions:
    defaults: dict[str, Any] = {
        "sync": SyncOptions(journal=tmp / "journal.sqlite", workers=4),
        "interval": 0.5,
        "reconcile_every": 3600.0,
        "status_file": tmp / "status.json",
        "status_every": 0.2,
    }
    defaults.update(values)
    return StandbyOptions(**defaults)


def test_follows_writes_and_overwrites_through_the_feed(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    _put(source, "before.txt", b"there before the standby")
    commands.standby_feed(pair["providers"], "src:media", "setup")
    running = Running(pair["providers"], "src:media", _standby_options(pair["tmp"]))
    _until(lambda: _target_bytes(target) == _target_bytes(source))
    for i in range(12):
        _put(source, f"new/{i}.txt", f"object {i}".encode())
    _put(source, "before.txt", b"overwritten while following")
    _until(lambda: _target_bytes(target) == _target_bytes(source))
    status = running.stop()
    assert status.mode == "feed"
    assert status.reconciliations == 1  # the initial sync; every later copy came from the feed
    assert status.copies == 14
    assert status.behind_objects == 0
    data = read_status(pair["tmp"] / "status.json")
    assert data["phase"] == "stopped" and not status_is_fresh(data)


def test_a_restart_copies_nothing_it_verified(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    for i in range(20):
        _put(source, f"k/{i}", bytes([i]) * (i + 1))
    first = Running(pair["providers"], "plain:media", _standby_options(pair["tmp"]))
    _until(lambda: len(_target_bytes(target)) == 20)
    assert first.stop().copies == 20
    _put(source, "k/new", b"written while it was down")
    second = Running(pair["providers"], "plain:media", _standby_options(pair["tmp"]))
    _until(lambda: len(_target_bytes(target)) == 21)
    status = second.stop()
    assert status.copies == 1, "only the object written while it was down"
    assert status.last_reconciliation is not None and status.last_reconciliation["listed"] == 21


def test_listing_mode_follows_without_a_feed(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    running = Running(pair["providers"], "plain:media", _standby_options(pair["tmp"]))
    for i in range(7):
        _put(source, f"l/{i}", b"listed" * i)
    _until(lambda: _target_bytes(target) == _target_bytes(source) and len(_target_bytes(target)) == 7)
    status = running.stop()
    assert status.mode == "listing" and status.feed is None
    assert status.copies == 7


def test_deletes_wait_for_the_flag_and_the_delay(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    for key in ("keep", "gone-1", "gone-2", "a", "b", "c", "d", "e", "f", "g"):
        _put(source, key, key.encode())
    commands.standby_feed(pair["providers"], "src:media", "setup")
    without = Running(pair["providers"], "src:media", _standby_options(pair["tmp"], reconcile_every=0.5))
    _until(lambda: len(_target_bytes(target)) == 10)
    source.delete("media", "gone-1")
    time.sleep(1.5)  # more than one reconciliation
    assert without.stop().deletes == 0
    assert "gone-1" in _target_bytes(target), "deleted without --propagate-deletes"

    options = _standby_options(pair["tmp"], propagate_deletes=True, delete_delay=1.5, reconcile_every=0.3)
    started = time.monotonic()
    running = Running(pair["providers"], "src:media", options)
    source.delete("media", "gone-2")
    _until(lambda: "gone-1" not in _target_bytes(target) and "gone-2" not in _target_bytes(target))
    assert time.monotonic() - started >= 1.5, "deleted before the delay"
    status = running.stop()
    assert status.deletes == 2
    assert set(_target_bytes(target)) == set(_target_bytes(source))


def test_deletes_respect_the_share_guard(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    for i in range(8):
        _put(source, f"g/{i}", b"guarded")
    options = _standby_options(pair["tmp"], propagate_deletes=True, delete_delay=0.0, reconcile_every=0.3)
    running = Running(pair["providers"], "plain:media", options)
    _until(lambda: len(_target_bytes(target)) == 8)
    for i in range(6):
        source.delete("media", f"g/{i}")
    _until(lambda: running.status is None and any("would be deleted" in e for e in _errors(pair)))
    status = running.stop()
    assert status.deletes == 0
    assert len(_target_bytes(target)) == 8


def _phase(pair: dict[str, Any]) -> str | None:
    try:
        return str(read_status(pair["tmp"] / "status.json")["phase"])
    except Exception:
        return None


def _errors(pair: dict[str, Any]) -> list[str]:
    try:
        return list(read_status(pair["tmp"] / "status.json")["recent_errors"])
    except Exception:
        return []


def test_events_the_feed_missed_are_caught_by_the_reconciliation(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    feed = MemoryFeed("src", MemoryFeedOptions(space=pair["src_space"]))
    commands.standby_feed(pair["providers"], "src:media", "setup")
    running = Running(pair["providers"], "src:media", _standby_options(pair["tmp"], reconcile_every=1.0))
    _until(lambda: _phase(pair) == "following")
    with source.space.lock:  # written and its event lost before the standby could receive it
        _put(source, "missed", b"the feed lost this event")
        assert feed.drop() == 1
    _until(lambda: "missed" in _target_bytes(target), timeout=5)
    status = running.stop()
    assert status.reconciliations >= 2


def test_a_feed_deleted_under_it_falls_back_to_listings(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    commands.standby_feed(pair["providers"], "src:media", "setup")
    running = Running(pair["providers"], "src:media", _standby_options(pair["tmp"]))
    _until(lambda: any("change feed" in n for n in running.notes))
    commands.standby_feed(pair["providers"], "src:media", "teardown")
    _put(source, "after-the-feed", b"found by a listing")
    _until(lambda: "after-the-feed" in _target_bytes(target))
    status = running.stop()
    assert status.mode == "listing"
    assert status.feed_fallback is not None and "gone" in status.feed_fallback
    assert any("change feed not used" in n for n in running.notes)


def test_an_outage_is_backed_off_from_and_reported_as_a_gap(pair: dict[str, Any]) -> None:
    source, target = pair["source"], pair["target"]
    faults = MemoryStore.space_faults(pair["src_space"])  # shared by the stores opened from now on
    running = Running(pair["providers"], "plain:media", _standby_options(pair["tmp"]))
    _until(lambda: _phase(pair) == "following")
    faults.raise_on["list_objects"] = (-1, lambda: ConnectionLost("connection refused", provider="plain"))
    _put(source, "during", b"written during the outage")
    # The store's own retries (up to 6 attempts, backing off) come first.
    _until(lambda: read_status(pair["tmp"] / "status.json").get("outage") is not None, timeout=60)
    faults.raise_on.clear()
    _until(lambda: "during" in _target_bytes(target))
    status = running.stop()
    assert status.outage is None
    assert status.gaps and status.gaps[0]["seconds"] > 0
    assert "connection refused" in status.gaps[0]["error"]


def test_pending_deletes_keep_their_clock_across_restarts(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "deletes.json"
    first = PendingDeletes(path, delay=60, clock=lambda: now[0])
    first.begin()
    assert not first.ripe("b", "k")
    first.settle({"b"})
    now[0] += 61
    again = PendingDeletes(path, delay=60, clock=lambda: now[0])
    again.begin()
    assert again.ripe("b", "k")
    again.settle({"b"})
    again.begin()
    again.settle({"b"})  # not asked: the source holds it again, or it was deleted
    assert again.count == 0


def test_metrics_are_served_in_prometheus_text(pair: dict[str, Any]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _put(pair["source"], "m", b"metered")
    event = threading.Event()
    done: list[StandbyStatus] = []
    thread = threading.Thread(
        target=lambda: done.append(
            commands.standby(
                pair["providers"],
                "plain:media",
                "dst:media",
                _standby_options(pair["tmp"]),
                stop=event,
                metrics=("127.0.0.1", port),
            )
        ),
        daemon=True,
    )
    thread.start()
    try:
        _until(lambda: "m" in _target_bytes(pair["target"]))
        _until(lambda: read_status(pair["tmp"] / "status.json").get("copies") == 1)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        event.set()
        thread.join(10)
    assert 'failover_standby_copies_total{source="plain:media",target="dst:media"} 1.0' in text
    assert "failover_standby_oldest_unreplicated_change_age_seconds" in text
    assert "failover_standby_behind_objects" in text


def test_a_second_standby_on_the_same_pair_is_refused(pair: dict[str, Any]) -> None:
    first = Running(pair["providers"], "plain:media", _standby_options(pair["tmp"]))
    _until(lambda: _phase(pair) == "following")
    second = Running(
        pair["providers"], "plain:media", _standby_options(pair["tmp"], status_file=pair["tmp"] / "b.json")
    )
    second.thread.join(10)
    assert isinstance(second.error, ConfigError) and "another standby already follows" in second.error.message
    assert "pid" in second.error.message
    assert first.stop().phase == "stopped"
