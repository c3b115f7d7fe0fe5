"""Run one training config through OpenCLIP's own loop: plan, register models, train, report.

`run_training(config)` is the library call; `python -m biomedica.train CONFIG.yaml` is the
same for each torchrun rank (`torchrun --nproc_per_node 4 -m biomedica.train CONFIG.yaml`),
and `biomedica train run` wraps both. Only `biomedica train run` evaluates (it builds the
eval hook from `biomedica.eval`; its torchrun ranks run `python -m biomedica.cli train run`):
a config with `eval.tasks` is refused without an eval hook rather than trained unevaluated.
Running the same config again resumes from the latest checkpoint in
`output_dir/name/checkpoints` (OpenCLIP's `--resume latest`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from biomedica.io.atomic import publish, temp_path, write_json_atomic
from biomedica.train.compat import openclip_tar_reader_fixed
from biomedica.train.config import TrainConfig
from biomedica.train.loader import openclip_loader_options
from biomedica.train.monitor import METRICS_NAME, EvalHook, StepMonitor, patched_openclip
from biomedica.train.openclip_args import TrainPlan, build_plan

PLAN_NAME = "plan.json"


class TrainingError(RuntimeError):
    """OpenCLIP refused or stopped the run; the message says why and what to do."""


@dataclass
class TrainResult:
    run_dir: Path
    checkpoints: list[Path]
    metrics_path: Path
    plan: TrainPlan
    eval_results: list[dict] = field(default_factory=list)

    @property
    def latest_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """`epoch_N.pt` files of a run, by N (epoch_latest.pt excluded)."""
    folder = Path(run_dir) / "checkpoints"
    found = [p for p in folder.glob("epoch_*.pt") if re.fullmatch(r"epoch_\d+\.pt", p.name)]
    return sorted(found, key=lambda p: int(p.stem.split("_")[1]))


def prepare_resume(run_dir: Path) -> Path | None:
    """Point `epoch_latest.pt` at the newest complete checkpoint before OpenCLIP's `--resume latest`.

    OpenCLIP writes `epoch_N.pt` in place and then `epoch_latest.pt` (atomically); a kill
    between the two, or during the first, must not restart the run from scratch nor resume
    from a truncated file. A checkpoint is complete when its zip directory (written last
    by torch.save) is readable. Returns the checkpoint the run will resume from.
    """
    folder = Path(run_dir) / "checkpoints"
    latest = folder / "epoch_latest.pt"
    complete = [p for p in reversed(list_checkpoints(run_dir)) if zipfile.is_zipfile(p)]
    latest_ok = latest.is_file() and zipfile.is_zipfile(latest)
    if complete and (not latest_ok or complete[0].stat().st_mtime_ns > latest.stat().st_mtime_ns):
        link = temp_path(latest)
        try:
            os.link(complete[0], link)  # no copy of a multi-GB file; OpenCLIP later replaces the name, not the data
            publish(link, latest)
        finally:
            link.unlink(missing_ok=True)
        return complete[0]
    if latest.is_file() and not latest_ok:
        latest.unlink()  # truncated: better no resume point than a crash while loading
        return None
    return latest if latest_ok else None


def check_environment(config: TrainConfig) -> None:
    """Fail early, in one line, when a package the config needs is missing."""
    try:
        import open_clip  # noqa: F401
        import open_clip_train.main  # noqa: F401
    except ImportError as exc:
        raise TrainingError(f"training needs open-clip-torch 3.x with its trainer: pip install 'biomedica[clip]' ({exc})") from None
    if "tensorboard" in config.logging.report_to:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise TrainingError(
                "logging.report_to has tensorboard but the tensorboard package is missing: "
                "pip install tensorboard, or set logging.report_to: []"
            ) from None


def register_models(config: TrainConfig) -> None:
    """Register the shipped and configured architectures (biomedica.models.configs); check model.name is one."""
    from biomedica.models import ModelLoadError, register_builtin_configs, register_model_config

    try:
        register_builtin_configs()
        if config.model.config_file is not None:
            register_model_config(config.model.config_file)
    except ModelLoadError as exc:
        raise TrainingError(str(exc)) from None
    import open_clip

    if not config.model.name.startswith("hf-hub:") and config.model.name not in open_clip.list_models():
        raise TrainingError(
            f"model.name {config.model.name!r} is not an OpenCLIP architecture; see open_clip.list_models(), "
            "or give model.config_file with a JSON architecture"
        )


def _write_plan(config: TrainConfig, plan: TrainPlan) -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        return
    config.run_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": json.loads(config.model_dump_json()), "plan": plan.summary(), "openclip_argv": plan.argv}
    path = config.run_dir / PLAN_NAME
    previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if previous is not None and previous.get("config") != record["config"]:
        plan.notes.append(f"the config differs from the one this run started with (see {path}); resuming anyway")
        path = config.run_dir / f"plan-{len(list(config.run_dir.glob('plan-*.json'))) + 1}.json"
    elif previous is not None and plan.loader is not None:
        before = (previous.get("plan", {}).get("loader") or {}).get("workers")
        if before is not None and before != plan.loader.workers:
            plan.notes.append(
                f"data.workers resolves to {plan.loader.workers} here, {before} when this run started: later "
                f"intervals draw other shards than an uninterrupted run; set data.workers: {before} to keep them"
            )
            record["plan"] = plan.summary()
            path = config.run_dir / f"plan-{len(list(config.run_dir.glob('plan-*.json'))) + 1}.json"
    write_json_atomic(path, record)  # a kill mid-write must not leave a plan.json the next resume cannot parse


def run_training(config: TrainConfig, print_fn=print, eval_hook: EvalHook | None = None) -> TrainResult:
    """Train (or resume) the run `config` describes, in this process (one rank under torchrun).

    `eval_hook` (built by `biomedica train run` from `biomedica.eval`) evaluates checkpoints on
    rank 0; each result row it returns lands in `TrainResult.eval_results`. It is required
    when `config.eval.tasks` is set: training those tasks unevaluated would ignore them.
    """
    if config.eval.tasks and eval_hook is None:
        raise TrainingError(
            f"eval.tasks is set ({', '.join(config.eval.tasks)}) but this entry point evaluates nothing; "
            "run `biomedica train run CONFIG` (torchrun ranks: `python -m biomedica.cli train run CONFIG`), "
            "or remove eval.tasks"
        )
    check_environment(config)
    register_models(config)
    if config.cpu_threads is not None:
        import torch

        torch.set_num_threads(config.cpu_threads)
    plan = build_plan(config)
    if plan.epochs.world_size > 1 and plan.argv[plan.argv.index("--device") + 1] == "cpu":
        raise TrainingError(
            "several processes on CPU: open_clip_train 3.x builds DDP with device_ids, which only GPUs accept; "
            "run one process on CPU (no --nproc-per-node), or use GPUs"
        )
    _write_plan(config, plan)
    if int(os.environ.get("RANK", "0")) == 0:
        resume_from = prepare_resume(config.run_dir)
        if resume_from is not None:
            print_fn(f"resuming from {resume_from}")
    if plan.loader is not None:
        loader = plan.loader
        print_fn(f"loader: {loader.workers} worker(s) ({loader.how}), pin_memory {loader.pin_memory}, "
                 f"prefetch_factor {loader.prefetch_factor}")
    for note in plan.notes:
        print_fn(f"note: {note}")
    for warning in plan.warnings:
        print_fn(f"warning: {warning}")
    eval_rows: list[dict] = []
    monitor = StepMonitor(config.run_dir / METRICS_NAME, config.logging.log_every_steps,
                          _collecting(eval_hook, eval_rows) if eval_hook else None)
    loader_options = openclip_loader_options(plan.loader) if plan.loader is not None else nullcontext()
    with openclip_tar_reader_fixed(), loader_options, patched_openclip(monitor) as openclip_main:
        status = openclip_main.main(plan.argv)
    if status == -1:
        raise TrainingError(
            f"OpenCLIP refused to start run {config.name} (see {config.run_dir / 'out.log'}); "
            "choose a new name or remove the folder"
        )
    return TrainResult(config.run_dir, list_checkpoints(config.run_dir), config.run_dir / METRICS_NAME, plan, eval_rows)


def _collecting(eval_hook: EvalHook, rows: list[dict]) -> EvalHook:
    def hook(model, args, completed_epoch: int, step: int) -> dict:
        row = eval_hook(model, args, completed_epoch, step)
        if row:
            rows.append(row)
        return row

    return hook


def launch_torchrun(
    config_path: Path, nproc_per_node: int, torchrun_args: list[str] | None = None, rank_module: list[str] | None = None
) -> int:
    """Run the config on `nproc_per_node` processes with torchrun (DDP); returns its exit status.

    Each rank runs `python -m <rank_module>` (default `biomedica.train CONFIG.yaml`).
    """
    rank = rank_module or ["biomedica.train", str(config_path)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc_per_node),
               *(torchrun_args or []), "-m", *rank]
    return subprocess.call(command)
