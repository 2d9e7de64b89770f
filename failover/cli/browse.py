"""``failover ls``: look at buckets and objects on any provider."""

from __future__ import annotations

import click

from ..connect import open_store
from ..location import parse_location
from ..units import human_size
from .app import App, complete_location, pass_app

__all__ = ["ls"]


@click.command()
@click.argument("location", shell_complete=complete_location)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most this many objects (1 or more).")
@pass_app
def ls(app: App, location: str, limit: int | None) -> int:
    """List buckets (PROVIDER:) or objects (PROVIDER:BUCKET[/PREFIX]).

    \b
    Example:
      failover ls aws:
      failover ls aws:media/avatars/ --limit 20
    """
    where = parse_location(location)
    with open_store(app.providers, where.provider) as store:
        if where.bucket is None:
            buckets = store.list_buckets()
            if app.json:
                app.emit_json(
                    {"provider": where.provider, "buckets": [{"name": b.name, "created": b.created} for b in buckets]}
                )
            for bucket in buckets:
                app.say(bucket.name)
            return 0
        count = total = 0
        items = []
        for info in store.list_objects(where.bucket, where.prefix):
            if limit is not None and count >= limit:
                break
            count += 1
            total += info.size
            if app.json:
                items.append({"key": info.key, "size": info.size, "last_modified": info.last_modified})
            else:
                app.say(f"{human_size(info.size):>10}  {info.key}")
        if app.json:
            app.emit_json({"location": location, "objects": items, "count": count, "bytes": total})
        else:
            app.say(f"{count} object(s), {human_size(total)}")
    return 0
