"""`python -m biomedica.cli ...`: the `biomedica` command (what torchrun ranks and tests start)."""

from biomedica.cli import app

app(prog_name="biomedica")
