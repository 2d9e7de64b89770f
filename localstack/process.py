"""Starting, finding and stopping the lab's server processes.

Servers run detached (their own session, so they outlive the command that started them) and are
recognised later by pid *and* command line, so a recycled pid is never mistaken for a lab server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["alive", "free_port", "free_port_pair", "is_free", "matches", "spawn", "stop", "tail", "wait_until"]

# Children started by this process, so they can be reaped (a zombie still answers kill(pid, 0)).
_children: dict[int, subprocess.Popen[bytes]] = {}


def free_port(avoid: set[int] | None = None, *, udp: bool = False) -> int:
    """A TCP port free on 127.0.0.1 right now (and the same UDP port, with ``udp``)."""
    avoid = avoid or set()
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid and (not udp or is_free(port, udp=True)):
            return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def is_free(port: int, *, udp: bool = False) -> bool:
    """True if ``port`` is free on 127.0.0.1 for TCP (and for UDP too, with ``udp``)."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_pair(offset: int, avoid: set[int]) -> int:
    """A free port ``p`` (below 55536) such that ``p + offset`` is free too."""
    for _ in range(500):
        port = free_port(avoid)
        if port + offset < 65536 and port + offset not in avoid and is_free(port + offset):
            return port
    raise RuntimeError(f"no free port pair (p, p+{offset}) found on 127.0.0.1")


def spawn(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> int:
    """Start a detached server; its output goes to ``log``. Returns its pid (= process group)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(  # noqa: S603 - argv is built by the lab, never from user text
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[process.pid] = process
    return process.pid


def _reap(pid: int) -> bool:
    """True if ``pid`` is our child and has exited (now reaped)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return True
    return False


def alive(pid: int) -> bool:
    if pid <= 0 or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def matches(pid: int, marker: str) -> bool:
    """True if ``pid`` is alive and its command line or working directory mentions ``marker``."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if marker in cmdline:
        return True
    with contextlib.suppress(OSError):
        return marker in os.readlink(f"/proc/{pid}/cwd")
    return False


def stop(pid: int, *, timeout: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.1)


def stop_matching(marker: str, *, timeout: float = 10.0) -> list[int]:
    """Stop every process of ours whose command line mentions ``marker`` (a path under the lab
    directory): servers that leave the process group they were started in (Swift's servers call
    setsid()), so stopping the group does not reach them. Returns the pids found."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        living = [pid for pid in found if alive(pid)]
        for pid in living:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(pid) for pid in living):
            time.sleep(0.1)
    return found


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.25, pid: int | None = None) -> bool:
    """Poll ``check`` until it is true (True), the deadline passes or ``pid`` dies (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001, S110 - a server starting up fails in many ways; keep polling
            pass
        if pid is not None and not alive(pid):
            return False
        time.sleep(interval)
    return False


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 16384, 0))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
