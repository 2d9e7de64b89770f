from pathlib import Path

import pytest

from failover.config import load_providers
from failover.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(text)
    return path


def test_shorthand_and_service_blocks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
version: 1
providers:
  aws:
    region: eu-west-1
    endpoint: https://s3.example.com
    credentials: {key_env: K, secret_env: S}
    storage: {type: s3, options: {vendor: aws}}
  disk:
    type: local
    options: {root: /srv/buckets}
""",
    )
    providers = load_providers(path)
    assert providers.names == ["aws", "disk"]
    spec = providers.spec("aws", "storage")
    assert (spec.type, spec.region, spec.endpoint) == ("s3", "eu-west-1", "https://s3.example.com")
    assert spec.options.vendor == "aws"
    assert providers.spec("disk", "storage").options.root == "/srv/buckets"


def test_inline_credentials_are_rejected_with_a_location_and_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "providers:\n  aws:\n    type: s3\n    credentials:\n      secret_access_key: hunter2hunter2\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_providers(path)
    message = str(raised.value)
    assert f"{path}:5" in message or f"{path}:4" in message
    assert "environment variable" in message
    assert "hunter2hunter2" not in message


def test_unknown_field_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  aws:\n    type: s3\n    regoin: us-east-1\n")
    with pytest.raises(ConfigError) as raised:
        load_providers(path)
    assert f"{path}:4:5: providers.aws.regoin: unknown field" in str(raised.value)


def test_unknown_adapter_type(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  x:\n    type: ftp\n")
    with pytest.raises(ConfigError, match="unknown storage type 'ftp'"):
        load_providers(path)


def test_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    providers = load_providers(write(tmp_path, "providers:\n  aws: {type: s3}\n"))
    with pytest.raises(ConfigError) as raised:
        providers.get("gcp")
    assert raised.value.hint == "known providers: aws"


def test_bad_adapter_option_is_reported_with_its_location(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  aws:\n    type: s3\n    options:\n      part_size_mib: 1\n")
    providers = load_providers(path)
    with pytest.raises(ConfigError, match=r"part_size_mib: Input should be greater than or equal to 5"):
        providers.spec("aws", "storage")


def test_missing_credential_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    path = write(
        tmp_path, "providers:\n  aws:\n    type: s3\n    credentials: {key_env: NOPE_KEY, secret_env: NOPE_SECRET}\n"
    )
    spec = load_providers(path).spec("aws", "storage")
    with pytest.raises(ConfigError, match="NOPE_KEY"):
        spec.credentials()


def test_credentials_are_read_from_the_environment_and_masked(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  aws:\n    type: s3\n    credentials: {key_env: K, secret_env: S}\n")
    creds = load_providers(path).spec("aws", "storage").credentials({"K": "AKIAEXAMPLE", "S": "s3cr3t-value"})
    assert creds.key == "AKIAEXAMPLE"
    assert creds.secret is not None
    assert creds.secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(creds)


def test_plain_http_only_to_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  far: {type: s3, endpoint: 'http://storage.example.com'}\n")
    with pytest.raises(ConfigError, match="unencrypted"):
        load_providers(path).spec("far", "storage")
    path = write(
        tmp_path, "providers:\n  far: {type: s3, endpoint: 'http://storage.example.com', allow_plain_http: true}\n"
    )
    assert load_providers(path).spec("far", "storage").endpoint == "http://storage.example.com"
    path = write(tmp_path, "providers:\n  near: {type: s3, endpoint: 'http://127.0.0.1:9000'}\n")
    assert load_providers(path).spec("near", "storage").endpoint == "http://127.0.0.1:9000"


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_providers(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_providers(write(tmp_path, "- just\n- a list\n"))


def test_a_provider_needs_a_service(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one service"):
        load_providers(write(tmp_path, "providers:\n  empty: {region: us-east-1}\n"))


def test_local_services_ignore_the_providers_endpoint_and_refuse_their_own(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
version: 1
providers:
  onprem:
    endpoint: http://127.0.0.1:8333
    storage: {type: s3}
    compute: {type: local, options: {root: /srv/instances}}
  wrong:
    compute: {type: local, endpoint: http://127.0.0.1:1, options: {root: /srv/instances}}
""",
    )
    providers = load_providers(path)
    assert providers.spec("onprem", "storage").endpoint == "http://127.0.0.1:8333"
    assert providers.spec("onprem", "compute").endpoint is None
    with pytest.raises(ConfigError, match="takes no endpoint"):
        providers.spec("wrong", "compute")
