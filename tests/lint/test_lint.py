"""``failover lint`` on files written for the purpose: every rule's own examples, a repository
shaped like a real one (Terraform with modules, count, for_each and dynamic blocks; SAM and JSON
CloudFormation with Fn::Sub ARNs; Python, TypeScript, JavaScript, Go, Java and Ruby with clients
built through factories; Kubernetes, a Dockerfile, a GitHub workflow), SARIF validated against
the publisher's 2.1.0 schema, exit codes, suppressions and the baseline.

The shop fixture marks what it plants: ``PLANT: <rule>`` expects a finding of that rule on the
next line, ``PLANT-SAME: <rule>`` on its own line. Every proprietary and managed finding must be
planted, and every planted one found: nothing missed, nothing portable called lock-in."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from failover.lab.tools import sarif_schema

from failover.lint import PARSE_ERROR, Portability, lint, shipped_rules
from failover.lint.engine import lint_file
from tests.helpers import run_cli

SHOP = Path(__file__).parent / "fixtures" / "shop"
_PLANT = re.compile(r"PLANT(-SAME)?: ([a-z0-9-]+)")

UNMARKABLE = {
    # JSON has no comments; a heredoc's text is the program's.
    ("cloudformation/legacy.json", 4, "aws-sns"),
    ("cloudformation/legacy.json", 7, "aws-elasticache"),
    ("cloudformation/legacy.json", 11, "aws-route53-alias"),
    ("infra/modules/queue/main.tf", 16, "aws-step-functions"),
}
PORTABLE_RESOURCES = {
    ("infra/main.tf", "module.network (terraform-aws-modules/vpc/aws)", "aws-vpc"),
    ("infra/main.tf", "aws_instance.web", "aws-ec2"),
    ("infra/main.tf", "aws_security_group.web", "aws-vpc"),
    ("infra/main.tf", "aws_s3_bucket.media", "aws-s3"),
    ("infra/dns.tf", "aws_route53_record.www", "aws-route53"),
    ("cloudformation/backend.yaml", "AWS::S3::Bucket AssetsBucket", "aws-s3"),
    ("cloudformation/backend.yaml", "AWS::EC2::Instance Server", "aws-ec2"),
    ("k8s/api.yaml", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "aws-ecr"),
}


def planted() -> set[tuple[str, int, str]]:
    found = set(UNMARKABLE)
    for path in sorted(SHOP.rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _PLANT.search(line)
            if match:
                found.add((path.relative_to(SHOP).as_posix(), number if match.group(1) else number + 1, match.group(2)))
    return found


def shop_json(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    copy = tmp_path / "shop"
    if not copy.exists():
        shutil.copytree(SHOP, copy)
    result = run_cli("lint", str(copy), "--format", "json", *args)
    data = result.json
    prefix = copy.as_posix() + "/"
    for finding in data["findings"]:
        finding["path"] = finding["path"].removeprefix(prefix)
    return result.code, data


RULE_EXAMPLES = [(rule.id, n, example) for rule in shipped_rules() for n, example in enumerate(rule.examples)]


@pytest.mark.parametrize(("rule_id", "number", "example"), RULE_EXAMPLES, ids=[f"{r}-{n}" for r, n, _ in RULE_EXAMPLES])
def test_every_rule_finds_its_own_examples(tmp_path: Path, rule_id: str, number: int, example: Any) -> None:
    path = tmp_path / example.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.text)
    findings, skipped = lint_file(path, example.file, shipped_rules())
    assert skipped is None
    assert PARSE_ERROR not in [f.rule_id for f in findings], [f.message for f in findings]
    assert rule_id in [f.rule_id for f in findings], [(f.rule_id, f.resource) for f in findings]


def test_every_rule_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [rule.id for rule in shipped_rules() if f"`{rule.id}`" not in readme]
    assert missing == [], f"add these rules to the README's lint table: {missing}"
    for rule in shipped_rules():
        assert rule.replacement and rule.why and rule.family, rule.id


def test_the_shop_repository_finds_every_planted_dependency_and_calls_nothing_portable_lock_in(
    tmp_path: Path,
) -> None:
    code, data = shop_json(tmp_path)
    assert code == 1, "proprietary findings fail the run by default"
    rules = shipped_rules()
    active = [f for f in data["findings"] if f["suppressed"] is None]
    locked = {(f["path"], f["line"], f["rule"]) for f in active if f["class"] in ("proprietary", "managed")}
    expected = planted()
    assert len(expected) >= 39
    assert expected - locked == set(), "planted and not found"
    assert locked - expected == set(), "lock-in reported where none was planted"
    for finding in active:
        if finding["class"] is not None:
            rule = rules.by_id[finding["rule"]]
            assert finding["replacement"] == rule.replacement and finding["effort"] == rule.effort
            assert finding["class"] == rule.portability.value
    portable = {(f["path"], f["resource"], f["rule"]) for f in active if f["class"] == "portable"}
    assert portable >= PORTABLE_RESOURCES
    unparsed = [f for f in active if f["rule"] == PARSE_ERROR]
    assert [(f["path"], f["line"]) for f in unparsed] == [("infra/broken.tf", 2)]
    assert "HCL" in unparsed[0]["message"]
    suppressed = [f for f in data["findings"] if f["suppressed"] == "inline"]
    assert [(f["path"], f["resource"]) for f in suppressed] == [("infra/dns.tf", "aws_sqs_queue.legacy")]
    assert data["schema"] == 1 and data["files_scanned"] >= 15
    assert not any(f["path"] == "README.md" for f in data["findings"]), "documentation is not scanned"
    services = {row["service"]: row for row in data["by_service"]}
    assert services["DynamoDB"]["class"] == "proprietary" and services["DynamoDB"]["files"] == 5
    assert services["RDS"]["class"] == "managed"
    prefix = (tmp_path / "shop").as_posix() + "/"
    directories = {row["directory"].removeprefix(prefix): row for row in data["by_directory"]}
    assert directories["infra/modules/queue"]["proprietary"] == 3
    low, high = data["effort_days"]
    assert 0 < low < high


def test_sarif_validates_against_the_2_1_0_schema_and_levels_follow_the_class(tmp_path: Path) -> None:
    shutil.copytree(SHOP, tmp_path / "shop")
    result = run_cli("lint", str(tmp_path / "shop"), "--format", "sarif")
    assert result.code == 1
    log = json.loads(result.stdout)
    schema = json.loads(sarif_schema().read_text())
    assert "2.1.0" in schema["title"]
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(log), key=str)
    assert errors == [], [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]]
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    levels = {"proprietary": "error", "managed": "warning", "portable": "note"}
    by_class: dict[str, set[str]] = {}
    for result_ in run["results"]:
        rule = rules[result_["ruleIndex"]]
        assert rule["id"] == result_["ruleId"]
        region = result_["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
        if result_["ruleId"] == PARSE_ERROR:
            assert result_["level"] == "error"
            continue
        by_class.setdefault(rule["properties"]["class"], set()).add(result_["level"])
    assert {c: levels[c] for c in by_class} == {c: next(iter(v)) for c, v in by_class.items()}
    assert all(len(v) == 1 for v in by_class.values()) and set(by_class) == set(levels)
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert [s["suppressions"][0]["kind"] for s in suppressed] == ["inSource"]
    # A rejected log proves the validation can fail.
    broken = json.loads(result.stdout)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_fail_on_picks_the_class_that_fails_the_run(tmp_path: Path) -> None:
    managed_only = tmp_path / "managed"
    managed_only.mkdir()
    (managed_only / "db.tf").write_text('resource "aws_db_instance" "main" {\n  engine = "postgres"\n}\n')
    (managed_only / "vm.tf").write_text('resource "aws_instance" "web" {}\n')
    assert run_cli("lint", str(managed_only)).code == 0, "managed engines pass the default threshold"
    failed = run_cli("lint", str(managed_only), "--fail-on", "managed")
    assert failed.code == 1 and "aws-rds" in failed.stdout
    assert run_cli("lint", str(managed_only), "--fail-on", "portable").code == 1
    assert run_cli("lint", str(SHOP), "--fail-on", "none").code == 0
    bad = run_cli("lint", str(managed_only), "--fail-on", "lockin")
    assert bad.code == 2 and "--fail-on lockin" in bad.stderr and "proprietary" in bad.stderr


def test_the_baseline_accepts_todays_findings_and_fails_on_new_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(SHOP, repo)
    baseline = tmp_path / "baseline.json"
    written = run_cli("lint", str(repo), "--write-baseline", str(baseline))
    assert written.code == 0 and baseline.is_file()
    clean = run_cli("lint", str(repo), "--baseline", str(baseline), "--format", "json")
    assert clean.code == 0, clean.stdout[-2000:]
    assert clean.json["counts"]["proprietary"] == 0 and clean.json["counts"]["baselined"] > 40
    # Lines move (a header added): the baseline still holds; a new queue does not.
    main = repo / "infra" / "main.tf"
    main.write_text("# moved down\n\n" + main.read_text() + '\nresource "aws_sqs_queue" "new" {}\n')
    again = run_cli("lint", str(repo), "--baseline", str(baseline), "--format", "json")
    assert again.code == 1
    active = [f for f in again.json["findings"] if f["suppressed"] is None and f["class"] != "portable"]
    assert [(f["resource"], f["rule"]) for f in active] == [("aws_sqs_queue.new", "aws-sqs")]
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2")
    refused = run_cli("lint", str(repo), "--baseline", str(garbage))
    assert refused.code == 2 and "garbage.json" in refused.stderr


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("broken.yaml", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n   bad: [\n", 4),
        ("template.json", '{"Resources": {"Q": {"Type": "AWS::SQS::Queue"},}}', 1),
        ("worker.py", "import boto3\nq = boto3.client('sqs'\n", 2),
        ("main.tf", 'resource "aws_sqs_queue" "q" {\n  name = "x"\n', 3),
    ],
)
def test_a_file_that_cannot_be_parsed_is_a_finding_with_the_parsers_line(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    (tmp_path / name).write_text(text)
    result = run_cli("lint", str(tmp_path), "--format", "json")
    assert result.code == 1
    unparsed = [f for f in result.json["findings"] if f["rule"] == PARSE_ERROR]
    assert len(unparsed) == 1, result.json["findings"]
    assert unparsed[0]["line"] == line and "cannot be parsed" in unparsed[0]["message"]
    assert run_cli("lint", str(tmp_path), "--fail-on", "none").code == 0


def test_bad_paths_are_refused_and_text_output_names_file_and_line(tmp_path: Path) -> None:
    missing = run_cli("lint", str(tmp_path / "nope"))
    assert missing.code == 2 and "no such file or directory" in missing.stderr
    (tmp_path / "q.tf").write_text('\n\nresource "aws_sqs_queue" "q" {}\n')
    (tmp_path / "big.json").write_bytes(b"\0" * 100)
    text = run_cli("lint", str(tmp_path))
    assert text.code == 1
    assert f"{(tmp_path / 'q.tf').as_posix()}:3: error [aws-sqs] SQS (aws_sqs_queue.q)" in text.stdout
    assert "RabbitMQ" in text.stdout and "readiness by service" in text.stdout
    assert "binary" in text.stdout


def test_suppressions_take_rule_lists_and_whole_files(tmp_path: Path) -> None:
    (tmp_path / "a.tf").write_text(
        '# failover-lint: ignore[aws-sns]\nresource "aws_sqs_queue" "kept" {}\n'
        'resource "aws_sns_topic" "t" {} # failover-lint: ignore[aws-sqs, aws-sns]\n'
    )
    (tmp_path / "b.py").write_text("# failover-lint: ignore-file\nimport boto3\nboto3.client('sqs')\n")
    report = lint([tmp_path])
    active = [(f.path.rsplit("/", 1)[-1], f.rule_id) for f in report.active]
    assert active == [("a.tf", "aws-sqs")], "an ignore for another rule does not hide this one"
    assert [f.rule_id for f in report.findings if f.suppressed] == ["aws-sns"]


def test_inventory_and_lint_share_one_vocabulary() -> None:
    from failover.inventory import NonPortable, label

    rules = shipped_rules()
    for service in ("lambda", "dynamodb", "sqs", "sns", "kinesis", "secretsmanager", "cloudformation", "cognito-idp"):
        rule = rules.for_service(service)
        assert rule is not None and rule.portability is Portability.PROPRIETARY, service
    assert rules.for_service("rds") is not None and rules.for_service("rds").portability is Portability.MANAGED  # type: ignore[union-attr]
    labelled = label(NonPortable("sqs", "queue", "orders"))
    assert labelled.rule == "aws-sqs" and labelled.portability == "proprietary"
    assert labelled.replacement == rules.by_id["aws-sqs"].replacement


def test_hostile_files_are_findings_never_a_crash(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "deep.py").write_text("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n")
    (tmp_path / "deep.yaml").write_text("a:\n" + "".join("  " * i + "- \n" for i in range(1500)))
    (tmp_path / "latin1.tf").write_bytes(b'\xff\xfe resource "aws_sqs_queue" {')
    (tmp_path / "big.tf").write_text("#" * (5 * 1024 * 1024))
    result = run_cli("lint", str(tmp_path), "--format", "json")
    assert result.code == 1
    unparsed = sorted(f["path"].rsplit("/", 1)[-1] for f in result.json["findings"] if f["rule"] == PARSE_ERROR)
    assert unparsed == ["deep.json", "deep.py", "deep.yaml", "latin1.tf"] or unparsed == [
        "deep.json",
        "deep.py",
        "latin1.tf",
    ]
    assert any("big.tf" in s and "limit" in s for s in result.json["files_skipped"])


def test_parallel_and_serial_scans_agree(tmp_path: Path) -> None:
    serial = lint([SHOP], jobs=1)
    parallel = lint([SHOP], jobs=2)
    assert [f.to_json() for f in serial.findings] == [f.to_json() for f in parallel.findings]
    assert serial.files_scanned == parallel.files_scanned > 15
