"""Files the project ships are valid: the compose providers file has the lab's shape."""

from pathlib import Path

import yaml

from failover.config import load_providers

REPO = Path(__file__).resolve().parents[2]


def test_compose_providers_file_has_the_lab_shape() -> None:
    providers = load_providers(REPO / "localstack" / "providers-compose.yaml")
    providers.validate_all()
    assert set(providers.names) == {"aws", "onprem", "onprem-libcloud", "disk"}
    assert providers.spec("onprem", "storage").options.vendor == "minio"


def test_compose_file_binds_loopback_only() -> None:
    compose = yaml.safe_load((REPO / "localstack" / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
