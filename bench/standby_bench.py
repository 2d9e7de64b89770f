"""``failover standby``: replication lag under a steady write rate, and the cost of a reconciliation.

On the lab (LocalStack as the source, the S3-compatible server as the target; started if it is not
running). For each mode (feed: LocalStack's S3 notifications to SQS; listing: ``--no-feed
--interval``) and each rate (default 10 and 100 writes/s of 1-64 KiB objects, for ``--seconds``),
a standby follows a new bucket while a writer puts objects with plain boto3; a poller lists the
target (boto3, keys after the last one it has seen) and records when each key appears. Lag is
appearance minus write time: p50, p99, max, and what was missing when the writes ended plus the
settle time. Goals: p99 <= 5 s with the feed at 10 writes/s; <= interval + 5 s without.

The reconciliation cost: a bucket of ``--reconcile`` objects already on the target is reconciled
(``failover sync`` again: both sides listed and confirmed, the source cross-checked, the journal
compared) and timed against ``rclone copy`` over the same in-sync pair (both sides listed and
compared by size and ETag: ``--fast-list --checksum``) in the same run; both per million objects.
``--seconds 0`` measures only the reconciliation.

    .venv/bin/python bench/standby_bench.py [--rates 10,100 --seconds 20 --interval 2 --reconcile 5000]

Writes bench/results/standby-<time>.json and prints the README's table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from failover.lab import Lab

from bench.sync_bench import rclone_binary

REPO = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--rates", default="10,100")
parser.add_argument("--seconds", type=float, default=20.0)
parser.add_argument("--interval", type=float, default=2.0)
parser.add_argument("--settle", type=float, default=30.0)
parser.add_argument("--reconcile", type=int, default=5000)
parser.add_argument("--modes", default="feed,listing")


def client(document: dict[str, Any], name: str) -> Any:
    provider = document["providers"][name]
    creds = provider["credentials"]
    return boto3.client(
        "s3",
        endpoint_url=provider["endpoint"],
        aws_access_key_id=os.environ[creds["key_env"]],
        aws_secret_access_key=os.environ[creds["secret_env"]],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16, retries={"max_attempts": 3}),
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3) if ordered else 0.0


def status(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def lag_run(
    document: dict[str, Any], env: dict[str, str], work: Path, mode: str, rate: float, args: Any
) -> dict[str, Any]:
    aws, onprem = client(document, "aws"), client(document, "onprem")
    bucket = f"bench-standby-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    status_file = work / f"{bucket}.json"
    argv = [sys.executable, "-m", "failover", "standby", f"aws:{bucket}", f"onprem:{bucket}", "--status-file",
            str(status_file), "--reconcile-every", "1h"]  # fmt: skip
    argv += ["--setup-feed"] if mode == "feed" else ["--no-feed", "--interval", f"{args.interval}s"]
    standby = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # noqa: S603
    while status(status_file).get("phase") != "following":
        if standby.poll() is not None:
            raise SystemExit(f"standby ended: {standby.stderr.read() if standby.stderr else ''}")
        time.sleep(0.1)
    written: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop_polling = threading.Event()

    def poll() -> None:
        while not stop_polling.is_set():
            pending = sorted(set(written) - set(seen))
            if pending:
                start = pending[0]
                page = onprem.list_objects_v2(Bucket=bucket, StartAfter=start[:-1] + chr(ord(start[-1]) - 1))
                now = time.time()
                for item in page.get("Contents", []):
                    seen.setdefault(item["Key"], now)
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    rng = random.Random(rate)
    total = int(rate * args.seconds)
    began = time.monotonic()

    def write(n: int) -> None:
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        key = f"w/{n:07d}"
        aws.put_object(Bucket=bucket, Key=key, Body=os.urandom(rng.randint(1024, 64 * 1024)))
        written[key] = time.time()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(total)))
    achieved = total / (time.monotonic() - began)
    deadline = time.monotonic() + args.settle
    while len(seen) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    stop_polling.set()
    poller.join(5)
    standby.send_signal(signal.SIGTERM)
    standby.wait(30)
    missing = sorted(set(written) - set(seen))
    lags = [seen[k] - written[k] for k in written if k in seen]
    final = status(status_file)
    return {
        "mode": mode,
        "rate_target": rate,
        "rate_achieved": round(achieved, 1),
        "writes": total,
        "lag_p50_s": percentile(lags, 0.5),
        "lag_p99_s": percentile(lags, 0.99),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_mean_s": round(statistics.fmean(lags), 3) if lags else None,
        "missing_after_settle": len(missing),
        "standby_errors": final.get("errors"),
        "standby_mode": final.get("mode"),
        "interval_s": args.interval if mode == "listing" else None,
    }


def reconcile_cost(document: dict[str, Any], env: dict[str, str], work: Path, count: int) -> dict[str, Any]:
    aws = client(document, "aws")
    bucket = f"bench-reconcile-{uuid.uuid4().hex[:8]}"
    aws.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: aws.put_object(Bucket=bucket, Key=f"r/{n:07d}", Body=b"x" * 1024), range(count)))
    sync = [sys.executable, "-m", "failover", "-q", "sync", f"aws:{bucket}", f"onprem:{bucket}"]
    subprocess.run(sync, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    started = time.monotonic()
    subprocess.run(sync, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    failover_s = time.monotonic() - started
    rclone = rclone_binary(REPO / ".lab" / "cache")
    conf = work / "rclone.conf"
    lines = []
    for name in ("aws", "onprem"):
        provider = document["providers"][name]
        creds = provider["credentials"]
        lines += [f"[{name}]", "type = s3", "provider = Other", f"endpoint = {provider['endpoint']}",
                  f"access_key_id = {os.environ[creds['key_env']]}",
                  f"secret_access_key = {os.environ[creds['secret_env']]}", "region = us-east-1", ""]  # fmt: skip
    conf.write_text("\n".join(lines))
    conf.chmod(0o600)
    # Tuned for an in-sync pair: one listing per side, compared by size and ETag (no HEAD per object).
    argv = [rclone, "--config", str(conf), "copy", f"aws:{bucket}", f"onprem:{bucket}", "--transfers", "16",
            "--checkers", "16", "--fast-list", "--checksum", "-q"]  # fmt: skip
    subprocess.run(argv, check=True)  # noqa: S603 - the same in-sync state (rclone copies nothing)
    started = time.monotonic()
    subprocess.run(argv, check=True)  # noqa: S603
    rclone_s = time.monotonic() - started
    return {
        "objects": count,
        "failover_s": round(failover_s, 3),
        "rclone_s": round(rclone_s, 3),
        "failover_s_per_million": round(failover_s * 1e6 / count, 1),
        "rclone_s_per_million": round(rclone_s * 1e6 / count, 1),
        "ratio": round(failover_s / rclone_s, 2),
    }


def main() -> None:
    args = parser.parse_args()
    info = Lab().up()
    os.environ.update(info.env())
    document = yaml.safe_load(info.providers_file.read_text())
    document["providers"]["aws"]["feed"] = {"type": "sqs", "options": {"queue": f"bench-{uuid.uuid4().hex[:8]}"}}
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "lag": []}
    with tempfile.TemporaryDirectory(prefix="standby-bench-") as scratch:
        work = Path(scratch)
        providers = work / "providers.yaml"
        providers.write_text(yaml.safe_dump(document))
        env = {**os.environ, "FAILOVER_PROVIDERS": str(providers), "FAILOVER_STATE_DIR": str(work / "state")}
        for mode in [m for m in args.modes.split(",") if m and args.seconds > 0]:
            for rate in (float(r) for r in args.rates.split(",")):
                result = lag_run(document, env, work, mode, rate, args)
                print(json.dumps(result), flush=True)
                results["lag"].append(result)
        if args.reconcile:
            results["reconcile"] = reconcile_cost(document, env, work, args.reconcile)
            print(json.dumps(results["reconcile"]), flush=True)
    out = REPO / "bench" / "results" / f"standby-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\n{out}\n")
    print("| mode | writes/s (achieved) | lag p50 | p99 | max | missing after settle |")
    print("|---|---|---|---|---|---|")
    for r in results["lag"]:
        mode = r["mode"] + (f" (every {r['interval_s']:g} s)" if r["interval_s"] else "")
        print(f"| {mode} | {r['rate_target']:g} ({r['rate_achieved']}) | {r['lag_p50_s']} s | {r['lag_p99_s']} s | "
              f"{r['lag_max_s']} s | {r['missing_after_settle']} |")  # fmt: skip
    if "reconcile" in results:
        c = results["reconcile"]
        print(
            f"\nreconciliation of {c['objects']} objects: failover {c['failover_s']} s, rclone copy {c['rclone_s']} s "
            f"({c['ratio']}x); per million: {c['failover_s_per_million']} s vs {c['rclone_s_per_million']} s"
        )


if __name__ == "__main__":
    main()
