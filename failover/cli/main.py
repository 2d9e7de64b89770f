"""The ``failover`` command. Thin: parse arguments, call one function, render the result.

Every error a user can cause ends here as a message, a hint and an exit code; a traceback is shown
only with ``--debug``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import cast

import click

from .. import __version__
from ..errors import FailoverError
from ..secrets import redact
from .app import EXIT_INTERNAL, EXIT_INTERRUPTED, App, setup_logging

__all__ = ["cli", "main"]


COMMANDS = {
    "lab": "failover.lab.cli:lab",
    "providers": "failover.cli.providers:providers",
    "ls": "failover.cli.browse:ls",
    "sync": "failover.cli.sync:sync",
    "standby": "failover.cli.standby:standby",
    "verify": "failover.cli.sync:verify",
    "inventory": "failover.cli.compute:inventory",
    "lint": "failover.cli.lint:lint_command",
    "rehost": "failover.cli.compute:rehost",
    "run": "failover.cli.run:run",
    "playbooks": "failover.cli.playbooks:playbooks",
    "report": "failover.cli.report:report",
    "dns": "failover.cli.dnscmd:dns",
    "validate": "failover.cli.run:validate",
}
"""Each command and where it lives. A command's module (and what it needs: pydantic models,
providers, SDKs) is imported only when that command runs, so ``failover sync`` does not pay for
the playbook runner, the DNS library or the lab, and ``--help`` lists them all by name. The lab
lives in localstack/ (imported as failover.lab), so the core package never imports it statically."""


class _Cli(click.Group):
    """The root group. Its flags may also follow the command (``failover inventory aws --json``):
    people type them at the end, and scripts append them."""

    FLAGS_ANYWHERE = frozenset({"--json", "-q", "--quiet", "--debug"})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, name = where.partition(":")
        return cast(click.Command, getattr(importlib.import_module(module), name))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        head, tail = args[:end], args[end:]
        flags = [a for a in head if a in self.FLAGS_ANYWHERE]
        return super().parse_args(ctx, flags + [a for a in head if a not in self.FLAGS_ANYWHERE] + tail)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="failover")
@click.option(
    "--providers",
    "providers_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="FAILOVER_PROVIDERS",
    help="Providers file (default: $FAILOVER_PROVIDERS, then ~/.config/failover/providers.yaml).",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable output on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--debug", is_flag=True, envvar="FAILOVER_DEBUG", help="Debug logs and tracebacks (secrets redacted).")
@click.option("--log-file", type=click.Path(path_type=Path, dir_okay=False), help="Also write logs to this file.")
@click.pass_context
def cli(
    ctx: click.Context, providers_path: Path | None, json_output: bool, quiet: bool, debug: bool, log_file: Path | None
) -> None:
    """failover: get off a hosting provider fast, verified and resumable, and stay able to leave.

    --json, -q and --debug may also follow the command."""
    setup_logging(debug, log_file)
    ctx.obj = App(providers_path=providers_path, json=json_output, quiet=quiet, debug=debug)


_json_errors = False


def _fail(message: str, hint: str | None, code: int, kind: str = "error") -> int:
    """The error for people on stderr; with --json also as a JSON document on stdout, so a script
    reading stdout gets one JSON value whatever happened."""
    click.echo(redact(f"error: {message}"), err=True)
    if hint:
        click.echo(redact(f"hint: {hint}"), err=True)
    if _json_errors:
        error = {"schema": 1, "error": {"kind": kind, "message": message, "hint": hint, "exit_code": code}}
        click.echo(redact(json.dumps(error, indent=2, ensure_ascii=False)))
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (for tests and ``main``)."""
    global _json_errors
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("FAILOVER_DEBUG") not in (None, "", "0")
    _json_errors = "--json" in args[: args.index("--") if "--" in args else len(args)] or (
        "--format" in args and args[args.index("--format") + 1 : args.index("--format") + 2] == ["json"]
    )
    try:
        result = cli.main(args=argv, prog_name="failover", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return _fail("aborted", None, EXIT_INTERRUPTED)
    except click.ClickException as exc:
        if _json_errors:
            return _fail(exc.format_message(), "see --help", int(exc.exit_code), "usage")
        exc.show()
        return int(exc.exit_code)
    except FailoverError as exc:
        if debug:
            click.echo(redact(traceback.format_exc()), err=True)
        return _fail(str(exc), exc.hint, exc.exit_code, type(exc).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted", "re-running the same command resumes where it stopped", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a message, not a traceback
        if debug:
            click.echo(redact(traceback.format_exc()), err=True)
        return _fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in failover; re-run with --debug and report the output",
            EXIT_INTERNAL,
            "internal",
        )
    return int(result or 0)


def main() -> None:
    code = run()
    if code == EXIT_INTERRUPTED:
        # Everything is recorded; worker threads cut short by Ctrl-C (a copy sleeping under
        # --bwlimit, a request in flight) would otherwise hold the exit until they end.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
