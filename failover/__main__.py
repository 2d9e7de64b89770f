"""``python -m failover`` runs the CLI."""

from .cli.main import main

main()
