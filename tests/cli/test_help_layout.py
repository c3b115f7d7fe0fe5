"""Every command's --help is readable at 80 columns: option names whole, help text present, no line over 80."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from biomedica.cli import app

runner = CliRunner()


def _commands(group, path: tuple[str, ...] = ()):
    yield path, group
    if hasattr(group, "commands"):  # a group (typer's click)
        for name, command in group.commands.items():
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "biomedica" for p, _ in COMMANDS])
def test_help_fits_80_columns_with_every_option_whole(path, command):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(line for line in lines if len(line) > 80)
    assert "…" not in result.output  # nothing cut short
    words = result.output.split()
    for param in command.params:
        if param.param_type_name != "option":
            continue
        for name in [*param.opts, *param.secondary_opts]:  # --lossy-images / --no-lossy-images
            assert name in words or f"{name}," in words, f"{name} cut or missing in: {' '.join(path)} --help"
        if param.help:  # its help is there, not truncated to nothing
            assert param.help.split()[0] in result.output, f"help of {param.opts[0]} missing"
    if hasattr(command, "commands"):
        for name in command.commands:
            assert f"  {name} " in result.output or f"  {name}\n" in result.output
