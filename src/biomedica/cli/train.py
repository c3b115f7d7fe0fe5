"""`biomedica train ...`: run a config, show its plan, WiSE-FT two checkpoints, export a model.

A Typer sub-app; the top-level CLI mounts it as `train`. Heavy imports (torch, open_clip)
happen inside the commands. Training and evaluation stay independent stages: this module
builds the eval hook from `biomedica.eval` and hands it to `run_training`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from biomedica.cli.console import stderr
from biomedica.cli.errors import check_output_folder, fail, output_folder_option
from biomedica.cli.groups import command_group
from biomedica.cli.summary import print_summary

if TYPE_CHECKING:
    from biomedica.train.config import TrainConfig
    from biomedica.train.monitor import EvalHook

app = command_group(
    "train", "Continual pre-training of CLIP models on streamed shards (OpenCLIP), WiSE-FT and export."
)


def _load(config_path: Path, steps: int | None):
    from biomedica.train.config import ConfigError, load_config, with_total_steps

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    return with_total_steps(config, steps) if steps else config


@app.command()
def run(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml", help="Training config (see configs/train/)."),
    nproc_per_node: int = typer.Option(1, min=1, help="Processes (GPUs) on this machine; >1 runs torchrun (DDP)."),
    torchrun_args: str = typer.Option("", help="More torchrun flags for multi-node, e.g. '--nnodes 2 --rdzv-endpoint host:29400'."),
    steps: int = typer.Option(
        None, min=1, help="Override schedule.total_steps (and a longer checkpoint interval, which is cut to it)."
    ),
) -> None:
    """Train (or resume: the same config continues from its latest checkpoint)."""
    from biomedica.eval.tasks import TaskFileError
    from biomedica.train.openclip_args import PlanError
    from biomedica.train.run import TrainingError, launch_torchrun, run_training
    from biomedica.train.sources import SourceError

    config = _load(config_path, steps)
    check_output_folder(config.run_dir, f"{config_path}: output_dir/name")
    if nproc_per_node > 1 or torchrun_args:
        if steps:
            fail("--steps applies to single-process runs; edit schedule.total_steps for torchrun")
        rank_module = ["biomedica.cli", "train", "run", str(config_path)]  # each rank builds its eval hook
        status = launch_torchrun(config_path, nproc_per_node, shlex.split(torchrun_args), rank_module)
        raise typer.Exit(code=status)
    try:
        result = run_training(config, print_fn=stderr.print, eval_hook=make_eval_hook(config))
    except (SourceError, PlanError, TrainingError, TaskFileError) as exc:
        fail(str(exc))
    from biomedica.train.monitor import read_metrics

    rows = read_metrics(result.run_dir)
    last = rows[-1] if rows else {}
    loader = result.plan.loader
    print_summary(f"biomedica train run -> {result.run_dir}", [
        ("steps done", f"{last.get('step', -1) + 1:,}"),
        ("loss (last step)", f"{last.get('loss', float('nan')):.4f}"),
        ("checkpoints", f"{len(result.checkpoints):,}"),
        *((("data workers", f"{loader.workers} ({loader.how})"),) if loader is not None else ()),
        ("held-out overlap warnings", f"{len(result.plan.warnings):,}"),
        *((f"warning {i}", w) for i, w in enumerate(result.plan.warnings, 1)),
        *((("evaluations", f"{len(result.eval_results):,}"),) if config.eval.tasks else ()),
        ("checkpoint folder", str(result.run_dir / "checkpoints")),
    ])


@app.command()
def plan(
    config_path: Path = typer.Argument(..., metavar="CONFIG.yaml"),
    world_size: int = typer.Option(1, min=1, help="Processes the run will use (batch and epoch sizes depend on it)."),
    argv: bool = typer.Option(False, help="Also print the open_clip_train arguments."),
    steps: int = typer.Option(None, min=1, help="As `train run --steps`: the plan of a run that long."),
) -> None:
    """Resolve the sources (sizes.json / manifest.json / key manifest) and print what would run."""
    from biomedica.train.openclip_args import PlanError, build_plan
    from biomedica.train.sources import SourceError

    config = _load(config_path, steps)
    try:
        result = build_plan(config, world_size=world_size)
    except (SourceError, PlanError) as exc:
        fail(str(exc))
    summary = result.summary()
    for warning in result.warnings:
        stderr.print(f"warning: {warning}")
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
        fail(str(exc))
    stderr.print(f"wrote {path} (alpha {alpha:g})")


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (epoch_N.pt) or any weights file."),
    model: str = typer.Option(..., "--model", "-m", help="OpenCLIP architecture name, e.g. ViT-L-14."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder to write (weights + open_clip_config.json).", callback=output_folder_option
    ),
    model_config: Path = typer.Option(None, help="JSON of a custom architecture (registered first)."),
) -> None:
    """Export weights as an OpenCLIP model folder loadable by open_clip.create_model_and_transforms."""
    from biomedica.models.configs import register_builtin_configs
    from biomedica.train.checkpoints import CheckpointError, export_model

    try:
        register_builtin_configs()
        exported = export_model(checkpoint, model, out, model_config)
    except CheckpointError as exc:
        fail(str(exc))
    stderr.print(
        f"wrote {exported.folder}: open_clip.create_model_and_transforms({model!r}, pretrained='{exported.weights}')"
    )


def make_eval_hook(config: TrainConfig) -> EvalHook | None:
    """The `biomedica eval` tasks run on rank 0 after every `eval.every_checkpoints` checkpoints.

    Each run appends its row (step, epoch, scores, skipped tasks) to `RUN/eval.jsonl` and returns it.
    """
    if not config.eval.tasks:
        return None
    from biomedica.eval.runner import EvalConfig as RunnerConfig
    from biomedica.eval.tasks import resolve_tasks

    tasks = resolve_tasks(",".join(config.eval.tasks))

    def hook(model, args, completed_epoch: int, step: int) -> dict:
        if completed_epoch % config.eval.every_checkpoints and completed_epoch != args.epochs:
            return {}
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        from biomedica.eval.runner import run_evaluation
        from biomedica.models import Model

        inner = model.module if hasattr(model, "module") else model
        preprocess = image_transform_v2(PreprocessCfg(**inner.visual.preprocess_cfg), is_train=False)
        tokenizer = open_clip.get_tokenizer(args.model, context_length=args.force_context_length)
        wrapped = Model(
            inner, preprocess, tokenizer, f"{config.name}-step{step}", f"{config.name}-step{step}", args.device, "auto"
        )
        options = {"out_dir": config.run_dir / "eval" / f"step_{step:08d}", "n_boot": config.eval.n_boot,
                   "use_cache": False, "device": str(args.device), "max_images": config.eval.max_images}
        if config.eval.data_dir is not None:
            options["data_dir"] = config.eval.data_dir
        outcomes = run_evaluation(wrapped, tasks, RunnerConfig(**options), log=lambda line: print(f"[eval] {line}", flush=True))
        inner.train()
        scores = {o.task: o.result["score"] for o in outcomes if o.status == "ok" and o.result is not None}
        row = {"step": step, "epoch": completed_epoch, "scores": scores,
               "skipped": [o.task for o in outcomes if o.status != "ok"]}
        with open(config.run_dir / "eval.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        return row

    return hook
