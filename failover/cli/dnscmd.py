"""``failover dns``: look at a provider's zones and records, and ask its nameserver directly."""

from __future__ import annotations

import click

from ..connect import open_dns
from ..dns import query
from ..errors import ConfigError
from .app import App, pass_app

__all__ = ["dns"]


@click.group()
def dns() -> None:
    """Zones and records of a provider's DNS service.

    \b
    Example:
      failover dns zones aws
      failover dns records onprem social.example
      failover dns query onprem www.social.example --type A
    """


@dns.command()
@click.argument("provider")
@pass_app
def zones(app: App, provider: str) -> int:
    """The zones PROVIDER hosts.

    \b
    Example:
      failover dns zones aws --json
    """
    with open_dns(app.providers, provider) as service:
        found = service.list_zones()
    if app.json:
        app.emit_json(
            {"provider": provider, "zones": [{"name": z.name, "id": z.id, "records": z.records} for z in found]}
        )
    else:
        app.table(["zone", "id", "record sets"], [[z.name, z.id, z.records] for z in found], title=provider)
    return 0


@dns.command()
@click.argument("provider")
@click.argument("zone")
@pass_app
def records(app: App, provider: str, zone: str) -> int:
    """The record sets of ZONE on PROVIDER.

    \b
    Example:
      failover dns records aws social.example
    """
    with open_dns(app.providers, provider) as service:
        found = service.list_records(zone)
    if app.json:
        app.emit_json(
            {
                "provider": provider,
                "zone": zone,
                "records": [{"name": r.name, "type": r.type, "ttl": r.ttl, "values": list(r.values)} for r in found],
            }
        )
    else:
        app.table(["name", "type", "ttl", "values"], [[r.name, r.type, r.ttl, " ".join(r.values)] for r in found])
    return 0


@dns.command("query")
@click.argument("provider")
@click.argument("name")
@click.option(
    "--type",
    "record_type",
    type=click.Choice(["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA", "PTR"], case_sensitive=False),
    default="A",
    show_default=True,
)
@pass_app
def query_command(app: App, provider: str, name: str, record_type: str) -> int:
    """Ask PROVIDER's nameserver for NAME over DNS, as a resolver would (exit 1: no answer).

    \b
    Example:
      failover dns query onprem www.social.example --type AAAA
    """
    with open_dns(app.providers, provider) as service:
        server = service.nameserver()
    if server is None:
        raise ConfigError(
            f"provider {provider!r} names no nameserver to query", hint="set its dns options: nameserver: HOST:PORT"
        )
    answer = query(server, name, record_type)
    if app.json:
        app.emit_json({"server": f"{server[0]}:{server[1]}", "name": name, "type": record_type, "answer": answer})
    else:
        app.say(f"{name} {record_type.upper()} at {server[0]}:{server[1]}: {' '.join(answer) or '(no answer)'}")
    return 0 if answer else 1
