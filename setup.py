"""Lists the packages under the folder mapping in pyproject.toml.

`providers/` installs as `failover.providers`, `localstack/` as `failover.lab` and `playbooks/` as
`failover.playbooks`; setuptools' automatic discovery cannot express that remapping, so the package
list is derived here.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "failover": "failover",
    "failover.providers": "providers",
    "failover.lab": "localstack",
    "failover.playbooks": "playbooks",
}


def packages() -> list[str]:
    found: set[str] = set()
    for package, folder in ROOTS.items():
        base = Path(folder)
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((package, *relative)))
    return sorted(found)


setup(packages=packages())
