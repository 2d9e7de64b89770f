"""failover lint over a generated repository of --files files, against grep over the same tree.

Run on demand (not by CI):
    .venv/bin/python bench/lint_bench.py [--files 1200] [--runs 3]

The repository mixes every format lint reads, in the proportions of a service monorepo:
Terraform (modules, count, for_each, dynamic blocks), CloudFormation YAML and JSON, Kubernetes
manifests, Python, TypeScript, Go, Java, Dockerfiles and workflows, plus documentation lint does
not read. Each tool runs as a whole process (start-up included), interleaved, median of --runs.
The peer is ``grep -rEn`` for the same AWS markers: the cost of reading every file once with no
parsing, a floor rather than a competitor (no portability linter exists to race).

Results: a Markdown table on stdout and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TERRAFORM = """\
module "vpc_{n}" {{
  source = "terraform-aws-modules/vpc/aws"
  cidr   = "10.{m}.0.0/16"
}}

resource "aws_instance" "app_{n}" {{
  count         = {m}
  ami           = "ami-0123456789abcdef0"
  instance_type = "t3.small"
  tags = {{ Name = "app-{n}-${{count.index}}" }}
}}

resource "aws_security_group" "app_{n}" {{
  name = "app-{n}"
  dynamic "ingress" {{
    for_each = [80, 443]
    content {{
      from_port = ingress.value
      to_port   = ingress.value
      protocol  = "tcp"
    }}
  }}
}}

resource "aws_sqs_queue" "jobs_{n}" {{
  for_each = toset(["a", "b"])
  name     = "jobs-{n}-${{each.key}}"
}}

resource "aws_dynamodb_table" "t_{n}" {{
  name     = "t-{n}"
  hash_key = "id"
  attribute {{
    name = "id"
    type = "S"
  }}
}}
"""
CLOUDFORMATION = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn{n}:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      Policies:
        - Statement:
            - Effect: Allow
              Action: sqs:SendMessage
              Resource: !Sub "arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:q{n}"
  Bucket{n}:
    Type: AWS::S3::Bucket
  Table{n}:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
"""
KUBERNETES = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{n}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: svc
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/svc-{n}:1.0.{m}
          ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: svc-{n}
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/svc-{n}
"""
PYTHON = '''\
"""Service {n}."""

import json
import os

import boto3

QUEUE = os.environ.get("QUEUE_URL", "")


def client(name):
    return boto3.client(name, region_name=os.environ.get("AWS_REGION"))


sqs = client("sqs")
table = boto3.resource("dynamodb").Table("t{n}")


def handle(event, context):
    for record in event.get("Records", []):
        body = json.loads(record["body"])
        table.put_item(Item={{"id": body["id"], "n": {n}}})
        sqs.delete_message(QueueUrl=QUEUE, ReceiptHandle=record["receiptHandle"])
    return {{"statusCode": 200}}
'''
TYPESCRIPT = """\
import {{ DynamoDBClient }} from "@aws-sdk/client-dynamodb";
import {{ S3Client, GetObjectCommand }} from "@aws-sdk/client-s3";

const db = new DynamoDBClient({{ region: process.env.AWS_REGION }});
const s3 = new S3Client({{}});

export async function get{n}(key: string): Promise<string> {{
  const out = await s3.send(new GetObjectCommand({{ Bucket: "media-{n}", Key: key }}));
  return String(out.ContentLength ?? 0);
}}
"""
GO = """\
package svc{n}

import (
\t"context"

\t"github.com/aws/aws-sdk-go-v2/config"
\t"github.com/aws/aws-sdk-go-v2/service/sns"
)

func Client() *sns.Client {{
\tcfg, _ := config.LoadDefaultConfig(context.TODO())
\treturn sns.NewFromConfig(cfg)
}}
"""
JAVA = """\
package svc{n};

import software.amazon.awssdk.services.kinesis.KinesisClient;

public class Stream{n} {{
    private final KinesisClient client = KinesisClient.create();
}}
"""
DOCKERFILE = 'FROM public.ecr.aws/lambda/python:3.12\nCOPY . ${{LAMBDA_TASK_ROOT}}\nCMD ["app.handler"]\n'
MARKDOWN = "# service {n}\n\nUses SQS and DynamoDB. Not read by lint.\n"

GREP_MARKERS = r"aws_|AWS::|boto3|@aws-sdk|aws-sdk-go|awssdk|amazonaws\.com"
MIX = [
    ("infra/{d}/main{n}.tf", TERRAFORM, 20),
    ("stacks/{d}/stack{n}.yaml", CLOUDFORMATION, 10),
    ("k8s/{d}/svc{n}.yaml", KUBERNETES, 10),
    ("services/{d}/svc{n}.py", PYTHON, 25),
    ("web/{d}/api{n}.ts", TYPESCRIPT, 15),
    ("go/{d}/svc{n}.go", GO, 8),
    ("java/{d}/Stream{n}.java", JAVA, 5),
    ("images/{d}/Dockerfile.{n}", DOCKERFILE, 2),
    ("docs/{d}/svc{n}.md", MARKDOWN, 5),
]


def make_repository(root: Path, files: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    weights = [w for _, _, w in MIX]
    kinds: dict[str, int] = {}
    for n in range(files):
        pattern, template, _ = rng.choices(MIX, weights)[0]
        path = root / pattern.format(d=f"team{n % 12}", n=n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(n=n, m=n % 200 + 1))
        kinds[path.suffix or path.name.split(".")[0]] = kinds.get(path.suffix or path.name.split(".")[0], 0) + 1
    return kinds


def timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    failover = [str(Path(sys.executable).with_name("failover"))]
    with tempfile.TemporaryDirectory(prefix="lint-bench-") as work:
        root = Path(work) / "repo"
        kinds = make_repository(root, args.files)
        lint_times: list[float] = []
        grep_times: list[float] = []
        report: dict[str, object] = {}
        for _ in range(args.runs):
            seconds, out = timed([*failover, "lint", str(root), "--format", "json", "--fail-on", "none"])
            lint_times.append(seconds)
            report = json.loads(out)
            seconds, _ = timed(["grep", "-rEn", GREP_MARKERS, str(root)])
            grep_times.append(seconds)
    lint_s, grep_s = statistics.median(lint_times), statistics.median(grep_times)
    scanned = int(report["files_scanned"])  # type: ignore[call-overload]
    counts = report["counts"]
    result = {
        "files": args.files,
        "files_scanned": scanned,
        "kinds": kinds,
        "runs": args.runs,
        "lint_seconds": lint_times,
        "grep_seconds": grep_times,
        "lint_files_per_second": round(scanned / lint_s, 1),
        "grep_files_per_second": round(args.files / grep_s, 1),
        "counts": counts,
    }
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"lint-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| tool | files | median s | files/s |")
    print("|---|---|---|---|")
    print(f"| failover lint | {scanned} read of {args.files} | {lint_s:.2f} | {scanned / lint_s:.0f} |")
    print(f"| grep -rEn (reads, no parsing) | {args.files} | {grep_s:.2f} | {args.files / grep_s:.0f} |")
    print(f"\nfindings: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
