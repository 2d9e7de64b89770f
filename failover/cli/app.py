"""Shared CLI plumbing: the context object, output (text for people, JSON for scripts), logging."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import Providers, load_providers
from ..secrets import RedactingFilter, redact

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "App",
    "complete_location",
    "complete_provider",
    "pass_app",
    "setup_logging",
]

JSON_SCHEMA = 1
"""The version of every JSON document the CLI writes (docs/json.md); raised when a field changes meaning."""
EXIT_INTERNAL = 70
"""A bug in failover (the message asks for a report)."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT) or SIGTERM; re-running the command resumes."""


def setup_logging(debug: bool, log_file: Path | None = None) -> None:
    """Warnings to stderr (everything with --debug); every line redacted."""
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        file_handler.addFilter(RedactingFilter())
        root.addHandler(file_handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    if not debug:
        for noisy in ("botocore", "boto3", "urllib3", "libcloud"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


@dataclass
class App:
    providers_path: Path | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    _providers: Providers | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Rich assumes 80 columns when not on a terminal; logs and CI deserve whole lines.
        width = None if sys.stdout.isatty() else 200
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True, width=width)

    @property
    def providers(self) -> Providers:
        if self._providers is None:
            self._providers = load_providers(self.providers_path)
        return self._providers

    def progress(self, message: str) -> None:
        """A progress line for people, on stderr; silent with --quiet or --json."""
        if not (self.quiet or self.json):
            self.err.print(redact(message), markup=False)

    def say(self, message: str, *, style: str | None = None) -> None:
        """A result line on stdout (not in --json mode)."""
        if not self.json:
            self.out.print(redact(message), markup=False, style=style)

    def emit_json(self, data: Any) -> None:
        """One JSON document on stdout; every object carries ``"schema": 1`` (see docs/json.md)."""
        if isinstance(data, dict) and "schema" not in data:
            data = {"schema": JSON_SCHEMA, **data}
        sys.stdout.write(redact(json.dumps(data, indent=2, default=str, ensure_ascii=False)) + "\n")

    def table(self, columns: list[str], rows: list[list[Any]], *, title: str | None = None) -> None:
        table = Table(title=title, show_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(redact("" if v is None else str(v)) for v in row))
        self.out.print(table)


pass_app = click.make_pass_decorator(App)


def complete_provider(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of provider names from the providers file (never fails, never prints)."""
    try:
        root = ctx.find_root()
        path = root.params.get("providers_path") if root is not None else None
        names = load_providers(path).names
    except Exception:  # noqa: BLE001 - completion must not break the shell
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_location(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of ``PROVIDER:`` for location arguments."""
    if ":" in incomplete:
        return []
    return [f"{name}:" for name in complete_provider(ctx, param, incomplete)]
