"""`python -m app.cli`: the `jobserver` command."""

from app.cli import app

app()
