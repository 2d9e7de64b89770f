"""``failover lab``: the embedded lab of real servers (LocalStack, SeaweedFS or MinIO)."""

from __future__ import annotations

import json
import os
import shlex

import click

from failover.cli.app import App, pass_app

from .lab import Lab

__all__ = ["lab"]


@click.group()
def lab() -> None:
    """Start, stop and inspect the embedded lab of real servers on 127.0.0.1 (no Docker).

    \b
    aws     LocalStack (S3, EC2, Route53, STS, ...) in its own Python 3.13 virtualenv
    onprem  an S3-compatible server: MinIO when reachable, else SeaweedFS
    Data lives under $FAILOVER_LAB_DIR (default ~/.local/state/failover/lab).

    \b
    Example:
      failover lab up && eval "$(failover lab env)" && failover lab seed
      failover lab down
    """


@lab.command()
@pass_app
def up(app: App) -> int:
    """Install what is missing and start the lab (harmless if it already runs).

    \b
    Example:
      failover lab up && eval "$(failover lab env)" && failover lab seed
    """
    info = Lab().up(app.progress)
    if app.json:
        app.emit_json(info.to_json(with_secrets=False))
    else:
        app.say(f"lab ready; providers file: {info.providers_file}")
        app.say('use it with: eval "$(failover lab env)"')
    return 0


@lab.command()
@pass_app
def down(app: App) -> int:
    """Stop the servers that 'lab up' started (external ones are left alone). SeaweedFS and PowerDNS
    keep their data on disk; LocalStack keeps nothing (its community edition has no persistence),
    so after the next 'lab up' its buckets, instances and zones are gone: 'failover lab seed' again.

    \b
    Example:
      failover lab down
    """
    stopped = Lab().down(app.progress)
    lost = [name for name in stopped if name == "localstack"]
    if app.json:
        app.emit_json({"stopped": stopped, "data_lost": lost})
    else:
        app.say(f"stopped: {', '.join(stopped)}" if stopped else "nothing to stop")
        if lost:
            app.say(
                "LocalStack keeps no data: its buckets, instances and zones are gone on the next 'lab up' "
                "(run 'failover lab seed' again); SeaweedFS and PowerDNS keep theirs"
            )
    return 0


@lab.command()
@pass_app
def status(app: App) -> int:
    """Which servers run, where, and whether they answer. Exit 1 if any does not.

    \b
    Example:
      failover lab status --json
    """
    info = Lab().status()
    if app.json:
        app.emit_json(info.to_json(with_secrets=False))
    elif not info.servers:
        app.say("the lab is not set up (run: failover lab up)")
    else:
        rows = [
            [
                name,
                f"{state.kind} {state.version}".strip(),
                state.endpoint,
                state.pid or "-",
                "yes" if info.health.get(name) else "no",
                "lab" if state.started_by_lab else "external",
            ]
            for name, state in info.servers.items()
        ]
        app.table(["server", "kind", "endpoint", "pid", "healthy", "started by"], rows, title=str(info.root))
    healthy = bool(info.servers) and all(info.health.get(name) for name in info.servers)
    return 0 if healthy else 1


@lab.command()
@pass_app
def env(app: App) -> int:
    """Shell exports that point failover at the lab: eval "$(failover lab env)".

    These are the lab's own throwaway credentials; --json adds endpoints for scripts.

    \b
    Example:
      eval "$(failover lab env)"
    """
    info = Lab().info()
    if app.json:
        # Deliberately unredacted: scripts ask for the lab's credentials here.
        click.echo(json.dumps(info.to_json(with_secrets=True), indent=2))
    else:
        for name, value in info.env().items():
            click.echo(f"export {name}={shlex.quote(value)}")
    return 0


@lab.command()
@pass_app
def seed(app: App) -> int:
    """Put a small reference platform on the lab's aws side (LocalStack): user media with real
    metadata and tags in the buckets 'media' and 'backups'; a fleet of EC2 instances whose user-data
    starts the social web app; and services with no portable equivalent (Lambda, SQS, SNS, Secrets
    Manager). Idempotent.

    \b
    Example:
      failover lab seed && failover inventory aws
    """
    from failover.config import load_providers
    from failover.connect import open_store

    from .platform import ZONE, seed_fleet, seed_zone
    from .seed import publish_media, seed_media

    info = Lab().info()
    os.environ.update(info.env())
    providers = load_providers(info.providers_file)
    with open_store(providers, "aws") as store:
        objects = seed_media(store)
    media_url = f"{providers.spec('aws', 'storage').endpoint}/media"
    fleet = seed_fleet(info.servers["localstack"], media_url)
    zone = seed_zone(info.servers["localstack"])
    publish_media(info)
    size = sum(len(o.body) for o in objects)
    if app.json:
        app.emit_json(
            {"objects": len(objects), "bytes": size, "instances": fleet["instances"], "zone": ZONE, "media": media_url}
        )
    else:
        buckets = ", ".join(sorted({o.bucket for o in objects}))
        app.say(f"seeded {len(objects)} objects ({size / 2**20:.1f} MiB) in {buckets} on aws")
        state = "created" if fleet["created"] else "already there"
        app.say(f"seeded {fleet['instances']} instances ({state}) and the services around them on aws")
        if zone["records"] is None:
            app.say(f"Route53 zone {ZONE}: already there, left as it is")
        else:
            app.say(f"seeded Route53 zone {ZONE}: {zone['records']} record sets, www -> {', '.join(zone['web'])}")
        app.say("media is public-read on aws (an evacuation with bucket settings carries that to the target)")
    return 0
