"""The lab's reference platform on the AWS side (LocalStack): a small social network's fleet and the
services around it, for ``failover lab seed``.

This module talks to LocalStack with boto3 directly: it sets up what a real account would have
(instance profiles, placement groups, Lambda functions...), which failover's provider-neutral
interfaces deliberately do not model.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from .servers import LabError, ServerState

__all__ = [
    "APP_PORT",
    "FLEET",
    "SEED_TAG",
    "ZONE",
    "app_user_data",
    "image_id",
    "public_read",
    "seed_fleet",
    "seed_zone",
]

APP_PORT = 8080
SEED_TAG = "failover:lab-seed"
ZONE = "social.example"
"""The platform's DNS zone (Route53 on the aws side)."""
ZONE_TTL = 300

APP = r"""
import json, os, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDRESS = os.environ.get("INSTANCE_ADDRESS", "0.0.0.0")
NAME = os.environ.get("INSTANCE_NAME", "social")
PORT = int(os.environ.get("APP_PORT", "8080"))
MEDIA_URL = os.environ.get("MEDIA_URL", "").rstrip("/")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the store is not behind a proxy


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, kind="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, b"ok")
        if self.path == "/":
            return self.reply(200, json.dumps({"app": "social", "instance": NAME, "media": MEDIA_URL}).encode(),
                              "application/json")
        if self.path.startswith("/media/") and MEDIA_URL:
            try:
                with DIRECT.open(MEDIA_URL + "/" + self.path[len("/media/"):], timeout=10) as upstream:
                    kind = upstream.headers.get("Content-Type", "application/octet-stream")
                    return self.reply(200, upstream.read(), kind)
            except urllib.error.HTTPError as error:
                return self.reply(error.code, f"media store said {error.code}".encode())
            except OSError as error:
                return self.reply(502, f"media store unreachable: {error}".encode())
        return self.reply(404, b"not found")

    def log_message(self, *args):
        pass


ThreadingHTTPServer((ADDRESS, PORT), Handler).serve_forever()
"""


def app_user_data(role: str, media_url: str = "") -> str:
    """Boot script: write the app and run it. On a VM it binds 0.0.0.0; failover's local instances
    set INSTANCE_ADDRESS so every instance binds its own loopback address."""
    return (
        "#!/bin/bash\n"
        f"# social {role}: serves the site and its media\n"
        f"export APP_PORT={APP_PORT}\n"
        f"export MEDIA_URL={media_url}\n"
        'WORK="${HOME:-/root}/social"\n'
        'mkdir -p "$WORK" && cd "$WORK"\n'
        "cat > app.py <<'PY'\n"
        f"{APP.strip()}\n"
        "PY\n"
        "exec python3 app.py\n"
    )


@dataclass(frozen=True)
class Machine:
    name: str
    size: str
    image_name: str
    tags: dict[str, str]
    role: str
    extras: tuple[str, ...] = ()


# The fleet: three web servers and a worker of the social app, plus two batch machines the local
# target cannot host (a GPU, an ARM server) so the translation table shows what does not carry.
FLEET = (
    Machine("web-1", "t3.small", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            {"app": "social", "role": "web"}, "web"),
    Machine("web-2", "t3.small", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            {"app": "social", "role": "web"}, "web"),
    Machine("web-3", "t3.medium", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            {"app": "social", "role": "web"}, "web"),
    Machine("worker-1", "m5.large", "amzn2-ami-hvm-2.0.*-x86_64-gp2",
            {"app": "social", "role": "worker"}, "worker", ("provisioned-iops",)),
    Machine("ml-1", "g4dn.xlarge", "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*",
            {"app": "batch", "role": "ml"}, "ml"),
    Machine("arm-1", "t4g.small", "al2023-ami-2023.*-arm64",
            {"app": "batch", "role": "arm"}, "arm"),
)  # fmt: skip


def _clients(state: ServerState, region: str = "us-east-1") -> Any:
    def client(service: str) -> Any:
        return state.client(service, region=region)

    return client


def image_id(ec2: Any, pattern: str) -> str:
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
    if not images:
        raise RuntimeError(f"LocalStack has no image named like {pattern!r}")
    return str(max(images, key=lambda i: i.get("CreationDate", ""))["ImageId"])


def seed_fleet(state: ServerState, media_url: str = "") -> dict[str, Any]:
    """Create the fleet and the services around it on LocalStack (idempotent: skipped if seeded)."""
    try:
        return _seed_fleet(state, media_url)
    except botocore.exceptions.BotoCoreError as error:
        raise LabError(f"seeding LocalStack failed: {error}") from error
    except botocore.exceptions.ClientError as error:
        raise LabError(f"seeding LocalStack failed: {error}") from error


def _seed_fleet(state: ServerState, media_url: str) -> dict[str, Any]:
    client = _clients(state)
    ec2 = client("ec2")
    existing = ec2.describe_instances(
        Filters=[{"Name": f"tag:{SEED_TAG}", "Values": ["1"]}, {"Name": "instance-state-name", "Values": ["running"]}]
    )
    seeded = [i for r in existing["Reservations"] for i in r["Instances"]]
    if seeded:
        return {"instances": len(seeded), "created": False}
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["social-web"]}])["SecurityGroups"]
    if groups:
        group = groups[0]["GroupId"]
    else:
        group = ec2.create_security_group(GroupName="social-web", Description="social app")["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                for p in (22, APP_PORT)
            ],
        )
    for machine in FLEET:
        params: dict[str, Any] = {
            "ImageId": image_id(ec2, machine.image_name),
            "InstanceType": machine.size,
            "MinCount": 1,
            "MaxCount": 1,
            "SecurityGroupIds": [group],
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": machine.name}, {"Key": SEED_TAG, "Value": "1"}]
                    + [{"Key": k, "Value": v} for k, v in machine.tags.items()]
                    + (
                        [{"Key": "failover:health-check", "Value": f"http://{{address}}:{APP_PORT}/healthz"}]
                        if machine.tags["app"] == "social"
                        else []
                    ),
                }
            ],
        }
        if machine.tags["app"] == "social":
            params["UserData"] = app_user_data(machine.role, media_url)
        instance = ec2.run_instances(**params)["Instances"][0]
        if "provisioned-iops" in machine.extras:
            # A data volume with provisioned IOPS: an EC2 feature no other provider carries.
            volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="io1", Iops=5000)
            ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=instance["InstanceId"], Device="/dev/sdf")
    _seed_services(client)
    return {"instances": len(FLEET), "created": True}


def public_read(s3: Any, bucket: str) -> None:
    """Let anyone GET the objects of ``bucket`` (the app serves media to browsers from it)."""
    statement = {
        "Sid": "PublicMedia",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


def _address(instance: dict[str, Any]) -> str:
    # The address failover's EC2 adapter reports for an instance: public, else private.
    return str(instance.get("PublicIpAddress") or instance["PrivateIpAddress"])


def seed_zone(state: ServerState) -> dict[str, Any]:
    """The platform's Route53 zone, pointing at the seeded fleet. Idempotent: an existing zone is
    left as it is (after an evacuation it points elsewhere, and re-seeding must not undo that)."""
    try:
        client = _clients(state)
        ec2, route53 = client("ec2"), client("route53")
        found = ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{SEED_TAG}", "Values": ["1"]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        )
        roles: dict[str, list[str]] = {}
        for reservation in found["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                roles.setdefault(tags.get("role", ""), []).append(_address(instance))
        web = sorted(roles.get("web", []))
        zones = route53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
        if any(z["Name"].rstrip(".") == ZONE for z in zones):
            return {"zone": ZONE, "records": None, "web": web}
        zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference=f"failover-lab-{ZONE}")["HostedZone"]["Id"]
        records = [
            (ZONE, "A", web),
            (f"www.{ZONE}", "A", web),
            (f"worker.{ZONE}", "A", sorted(roles.get("worker", []))),
            (f"api.{ZONE}", "CNAME", [f"www.{ZONE}."]),
            (ZONE, "MX", [f"10 mail.{ZONE}."]),
            (f"mail.{ZONE}", "A", ["198.51.100.25"]),  # a mail host outside the fleet: copied, not moved
            (ZONE, "TXT", ['"v=spf1 mx -all"']),
        ]
        changes = [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": name,
                    "Type": kind,
                    "TTL": ZONE_TTL,
                    "ResourceRecords": [{"Value": v} for v in values],
                },
            }
            for name, kind, values in records
            if values
        ]
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise LabError(f"seeding the Route53 zone failed: {error}") from error
    return {"zone": ZONE, "records": len(changes), "web": web}


def _seed_services(client: Any) -> None:
    """The account's services that have no portable equivalent (the inventory lists them)."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'resized': event.get('key')}\n")
    role = "arn:aws:iam::000000000000:role/social-app"
    functions = client("lambda").list_functions()["Functions"]
    if not any(f["FunctionName"] == "thumbnailer" for f in functions):
        client("lambda").create_function(
            FunctionName="thumbnailer",
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": code.getvalue()},
        )
    client("sqs").create_queue(QueueName="upload-events")
    client("sns").create_topic(Name="notifications")
    secrets = client("secretsmanager")
    if not secrets.list_secrets(Filters=[{"Key": "name", "Values": ["social/db-password"]}])["SecretList"]:
        secrets.create_secret(Name="social/db-password", SecretString="seeded-by-the-lab")
