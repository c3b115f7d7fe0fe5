"""One refusal format for every command: `error: ...` on one line, exit code 2, options named by their field."""

from __future__ import annotations

import pytest
import typer
from pydantic import BaseModel, Field, ValidationError, model_validator
from typer.testing import CliRunner

from biomedica.cli.errors import fail, validation_message


class _Net(BaseModel):
    retries: int = Field(3, ge=0)


class _Config(BaseModel):
    workers: int = Field(1, ge=1)
    net: _Net = _Net()
    cap: int | None = None

    @model_validator(mode="after")
    def _cap_needs_workers(self):
        if self.cap is not None and self.workers < 2:
            raise ValueError("cap needs workers >= 2")
        return self


def _message(**options) -> str:
    with pytest.raises(ValidationError) as caught:
        _Config(**options)
    return validation_message(caught.value)


def test_validation_message_names_the_field_path():
    assert _message(workers=0) == "invalid option workers: Input should be greater than or equal to 1"
    assert _message(net={"retries": -1}) == "invalid option net.retries: Input should be greater than or equal to 0"
    assert _message(cap=3) == "invalid option options: cap needs workers >= 2"


def test_fail_prints_one_line_with_brackets_as_typed_and_exits_2(tmp_path):
    app = typer.Typer()
    long_path = tmp_path / ("x" * 120) / "a.yaml"

    @app.command()
    def refuse() -> None:
        fail(f"{long_path}: missing; pip install 'biomedica[annotate]'")

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert result.output.splitlines() == [f"error: {long_path}: missing; pip install 'biomedica[annotate]'"]
