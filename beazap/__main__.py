"""``python -m beazap`` runs the CLI."""

from beazap.cli import app

app()
