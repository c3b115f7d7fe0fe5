"""`biomedica train ...`: run a config, show its plan, WiSE-FT two checkpoints, export a model.

A Typer sub-app; the top-level CLI mounts it as `train`. Heavy imports (torch, open_clip)
happen inside the commands.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="train",
    help="Continual pre-training of CLIP models on streamed shards (OpenCLIP), WiSE-FT and export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # one line per message: copy-pasteable paths


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _load(config_path: Path, steps: int | None):
    from biomedica.train.config import ConfigError, load_config

    overrides = {"schedule.total_steps": steps} if steps else None
    try:
        return load_config(config_path, overrides)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def run(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml", help="Training config (see configs/train/)."),
    nproc_per_node: int = typer.Option(1, min=1, help="Processes (GPUs) on this machine; >1 runs torchrun (DDP)."),
    torchrun_args: str = typer.Option("", help="More torchrun flags for multi-node, e.g. '--nnodes 2 --rdzv-endpoint host:29400'."),
    steps: int = typer.Option(None, min=1, help="Override schedule.total_steps."),
) -> None:
    """Train (or resume: the same config continues from its latest checkpoint)."""
    from biomedica.train.openclip_args import PlanError
    from biomedica.train.run import TrainingError, launch_torchrun, run_training
    from biomedica.train.sources import SourceError

    config = _load(config_path, steps)
    if nproc_per_node > 1 or torchrun_args:
        if steps:
            _fail("--steps applies to single-process runs; edit schedule.total_steps for torchrun")
        status = launch_torchrun(config_path, nproc_per_node, shlex.split(torchrun_args))
        raise typer.Exit(code=status)
    try:
        result = run_training(config, print_fn=lambda line: console.print(line))
    except (SourceError, PlanError, TrainingError) as exc:
        _fail(str(exc))
    from biomedica.train.monitor import read_metrics

    rows = read_metrics(result.run_dir)
    last = rows[-1] if rows else {}
    console.print(
        f"[bold]done[/]: step {last.get('step', -1) + 1}, loss {last.get('loss', float('nan')):.4f}, "
        f"{len(result.checkpoints)} checkpoint(s) in {result.run_dir / 'checkpoints'}"
    )


@app.command()
def plan(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml"),
    world_size: int = typer.Option(1, min=1, help="Processes the run will use (batch and epoch sizes depend on it)."),
    argv: bool = typer.Option(False, help="Also print the open_clip_train arguments."),
) -> None:
    """Resolve the sources (sizes.json / manifest.json / key manifest) and print what would run."""
    from biomedica.train.openclip_args import PlanError, build_plan
    from biomedica.train.sources import SourceError

    config = _load(config_path, None)
    try:
        result = build_plan(config, world_size=world_size)
    except (SourceError, PlanError) as exc:
        _fail(str(exc))
    summary = result.summary()
    if argv:
        summary["openclip_argv"] = result.argv
    typer.echo(json.dumps(summary, indent=1))


@app.command("wise-ft")
def wise_ft(
    base: Path = typer.Argument(..., help="Zero-shot / base weights (alpha 0 gives these)."),
    tuned: Path = typer.Argument(..., help="Fine-tuned weights (alpha 1 gives these)."),
    alpha: float = typer.Option(0.5, min=0.0, max=1.0, help="Mixing weight of the fine-tuned model."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.pt/.bin, or .safetensors)."),
) -> None:
    """WiSE-FT: write (1 - alpha) * BASE + alpha * TUNED."""
    from biomedica.train.checkpoints import CheckpointError, wise_ft_files

    try:
        path = wise_ft_files(base, tuned, alpha, out)
    except CheckpointError as exc:
        _fail(str(exc))
    console.print(f"wrote {path} (alpha {alpha:g})")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (epoch_N.pt) or any weights file."),
    model: str = typer.Option(..., "--model", "-m", help="OpenCLIP architecture name, e.g. ViT-L-14."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (weights + open_clip_config.json)."),
    model_config: Path = typer.Option(None, help="JSON of a custom architecture (registered first)."),
) -> None:
    """Export weights as an OpenCLIP model folder loadable by open_clip.create_model_and_transforms."""
    from biomedica.train.checkpoints import CheckpointError, export_model, register_builtin_models

    try:
        register_builtin_models()
        exported = export_model(checkpoint, model, out, model_config)
    except CheckpointError as exc:
        _fail(str(exc))
    console.print(
        f"wrote {exported.folder}: open_clip.create_model_and_transforms({model!r}, pretrained='{exported.weights}')"
    )
