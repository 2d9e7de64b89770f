"""The public API: what ``failover`` and each interface module export is exactly what is meant
(an accidental removal or a leaked private name fails here), and every exported name exists."""

from __future__ import annotations

import importlib

import pytest

import failover

EXPECTED = {
    "failover": {
        "__version__", "AuthError", "BucketInfo", "ByteRange", "Capability", "Compute", "ConfigError", "Dns",
        "FailoverError", "Instance", "InstanceSpec", "IntegrityError", "MetaField", "NotFound", "NotSupported",
        "ObjectInfo", "ObjectMeta", "ObjectReader", "ObjectStore", "PlaybookError", "ProviderError", "Providers",
        "RecordSet", "RunOptions", "StoreCapabilities", "SyncEngine", "SyncOptions", "SyncReport", "Transient",
        "VerifyOptions", "load_playbook", "load_providers", "open_compute", "open_dns", "open_store", "run_playbook",
        "run_verify",
    },
    "failover.storage": {"ObjectReader", "ObjectStore", "RawBody", "Readable", "read_full"},
    "failover.compute": {
        "Catalog", "Compute", "ComputeCapabilities", "ComputeCapability", "Image", "ImageRef", "Instance",
        "InstanceSpec", "InstanceState", "Size",
    },
    "failover.dns": {
        "PROVIDER_OWNED_TYPES", "Dns", "DnsCapabilities", "DnsCapability", "NameserverAddress", "RecordSet", "Zone",
        "canonical_name", "canonical_value", "portable_records", "query", "record_set",
    },
    "failover.testing": {
        "Faults", "MemoryCompute", "MemoryComputeOptions", "MemoryDns", "MemoryDnsOptions", "MemoryFeed",
        "MemoryFeedOptions", "MemoryOptions", "MemoryStore", "reset_services",
    },
    "failover.changes": {
        "Action", "Change", "JsonValue", "change_line", "changes_from_json", "changes_to_json", "undo_of",
    },
    "failover.lint": {
        "PARSE_ERROR", "Baseline", "Finding", "LintReport", "Portability", "Rule", "RuleSet", "fail_threshold",
        "lint", "lint_json", "lint_sarif", "load_rules", "shipped_rules",
    },
    "failover.htmlreport": {"render_html", "report_kind", "write_html"},
    "failover.commands": {
        "RehostRefused", "RehostRequest", "RehostRun", "SyncRun", "plan_rehost_fleet", "rehost", "rehost_rollback",
        "standby", "standby_feed", "sync", "verify", "write_json", "write_report", "write_sync_json",
    },
    "failover.feed": {"ChangeEvent", "ChangeFeed"},
    "failover.standby": {
        "PendingDeletes", "Standby", "StandbyOptions", "StandbyStatus", "read_status", "status_is_fresh",
    },
    "failover.cluster": {"ClusterSpec", "parse_cluster"},
    "failover.playbook.outputs": {
        "DnsCutoverOutput", "DnsPrepareOutput", "FleetInstance", "HealthOutput", "InventoryOutput", "NoOutput",
        "RehostOutput", "StandbyOutput", "StepOutput", "SyncOutput", "VerifyOutput",
    },
    "failover.playbook.steps": {
        "KINDS", "ApprovalPending", "Context", "Outcome", "Planned", "Requirement", "StepKind", "kind_of",
        "plan_undo_step", "undo_step",
    },
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert not [name for name in module.__all__ if name.startswith("_") and name != "__version__"]


def test_the_package_loads_its_api_lazily() -> None:
    assert "ObjectStore" in dir(failover)
    assert failover.ObjectStore.__module__ == "failover.storage"
    with pytest.raises(AttributeError):
        _ = failover.no_such_name  # type: ignore[attr-defined]


def test_every_command_has_an_example_in_its_help() -> None:
    """``--help`` of every command and subcommand shows at least one example, as the README promises."""
    import click

    from failover.cli.main import COMMANDS, cli

    missing = []
    context = click.Context(cli)

    def walk(command: click.Command, path: str) -> None:
        if "Example" not in (command.help or ""):
            missing.append(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                if sub is not None:
                    walk(sub, f"{path} {name}")

    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None, name
        walk(command, name)
    assert missing == []
