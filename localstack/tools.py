"""Tools the lab's tests use that are not servers: fetched once from a package registry into the
lab cache by the project's own code."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from failover.files import write_atomic

from .servers import ENV_CACHE, LabError

__all__ = ["CHROMIUM_PACKAGES", "SARIF_SCHEMA_PACKAGE", "chromium", "sarif_schema"]

SARIF_SCHEMA_PACKAGE = "@microsoft/sarif-multitool-linux@5.7.0"
"""Microsoft's SARIF SDK ships the OASIS SARIF 2.1.0 JSON schema (sarif-2.1.0.json) in this npm
package; the lab takes the schema from it, so SARIF is validated against the publisher's file."""
_MEMBER = "package/sarif-2.1.0.json"


def sarif_schema(cache: Path | None = None) -> Path:
    """The SARIF 2.1.0 JSON schema, downloaded with ``npm pack`` on first use and kept in the cache
    ($FAILOVER_LAB_CACHE, else ``.lab/cache``)."""
    root = cache or Path(os.environ.get(ENV_CACHE) or ".lab/cache")
    target = root / "sarif" / "sarif-2.1.0.json"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise LabError(
            "the SARIF schema comes from the npm registry, and this machine has no npm", hint="install Node.js"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        packed = subprocess.run(  # noqa: S603
            [npm, "pack", "--silent", SARIF_SCHEMA_PACKAGE],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(work).glob("*.tgz"))
        if packed.returncode != 0 or not tarballs:
            raise LabError(f"npm pack {SARIF_SCHEMA_PACKAGE} failed: {(packed.stderr or packed.stdout).strip()[-400:]}")
        with tarfile.open(tarballs[0]) as archive:
            member = archive.extractfile(_MEMBER)
            if member is None:
                raise LabError(f"{SARIF_SCHEMA_PACKAGE} holds no {_MEMBER}")
            write_atomic(target, member.read().decode("utf-8"))
    return target


CHROMIUM_PACKAGES = ("chromium",)


def chromium(cache: Path | None = None) -> tuple[Path, dict[str, str]]:
    """Debian's Chromium, unpacked without root into the lab cache (with the libraries this machine
    lacks): the browser binary and the environment to run it with."""
    from .servers import unpack_debian

    root_cache = ((cache or Path(os.environ.get(ENV_CACHE) or ".lab/cache")) / "chromium").resolve()
    binary = root_cache / "root" / "usr" / "lib" / "chromium" / "chromium"
    if not binary.is_file():
        unpack_debian(CHROMIUM_PACKAGES, root_cache, hint="install it with: sudo apt-get install chromium")
    lib = root_cache / "root" / "usr" / "lib"
    folders = [p for arch in ("x86_64-linux-gnu", "aarch64-linux-gnu") for p in (lib / arch, lib / arch / "pulseaudio")]
    libs = [str(p) for p in folders if p.is_dir()]
    env = {"LD_LIBRARY_PATH": ":".join([*libs, os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(":")}
    return binary, env
