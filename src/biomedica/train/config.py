"""The training config: one YAML file (model, data sources with weights, optimiser, schedule, output).

Every field is validated by pydantic; `load_config` turns a bad file into one `ConfigError`
line naming the file, the field path and the fix. Field names follow OpenCLIP's flags where
one exists (`accum_freq`, `grad_clip_norm`, `warmup`, ...), so a reader who knows
`open_clip_train` recognises them; `biomedica.train.openclip_args` maps them onto it.

Streaming semantics (the one table users need):

| setting                    | meaning                                                                         |
|----------------------------|---------------------------------------------------------------------------------|
| `schedule.total_steps`     | optimiser steps of the whole run                                                |
| `schedule.checkpoint_every_steps` | steps between checkpoints; OpenCLIP calls this interval an "epoch"       |
| `data.resampled: true`     | shards drawn with replacement, per-source weights apply, seeded by (seed, epoch, rank, worker) |
| `data.resampled: false`    | each shard once per pass (one source only); a checkpoint per pass               |
| running the same config again | resumes from the newest complete checkpoint; the shards drawn in each later interval are those an uninterrupted run draws (seeded by seed, interval, rank, worker); the order inside OpenCLIP's 5,000-sample shuffle buffer is not (it seeds it from pid and time); steps since the last checkpoint are redone |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biomedica.archive.split import DEFAULT_HELD_OUT_FRACTION
from biomedica.records import LICENSE_GROUPS
from biomedica.validation import first_error


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """Which OpenCLIP model to build and from which weights: `spec`, or `name` with `pretrained`."""

    spec: str | None = Field(
        None,
        description="model spec as every stage takes it (biomedica.models.spec): ARCH:TAG, ARCH:/path.pt, ARCH:random, "
        "hf-hub:ORG/NAME, tiny-random; sets name and pretrained",
    )
    name: str | None = Field(None, description="OpenCLIP architecture, e.g. ViT-L-14, ViT-B-16, or a custom one from config_file")
    pretrained: str | None = Field(None, description="OpenCLIP pretrained tag, a weights path, or null (from scratch)")
    config_file: Path | None = Field(
        None, description="JSON architecture registered with open_clip.add_model_config; its stem must equal `name`"
    )
    precision: Literal["amp", "amp_bf16", "amp_bfloat16", "bf16", "fp16", "fp32", "pure_bf16", "pure_fp16"] = "amp_bf16"
    context_length: int | None = Field(None, ge=1, description="force the text context length (BiomedCLIP: 256)")
    force_image_size: int | None = Field(None, ge=16)
    grad_checkpointing: bool = False
    torchcompile: bool = False
    local_loss: bool = True
    gather_with_grad: bool = True
    lock_image: bool = False
    lock_text: bool = False

    @model_validator(mode="after")
    def _config_file_names_model(self) -> ModelConfig:
        if self.spec is not None:
            name, pretrained = _openclip_args(self.spec)
            if (self.name or name, self.pretrained or pretrained) != (name, pretrained):
                raise ValueError(f"spec {self.spec!r} names {name} ({pretrained}); drop name and pretrained")
            self.name, self.pretrained = name, pretrained
        elif self.name is None:
            raise ValueError("give spec (e.g. ViT-B-16:laion2b_s34b_b88k) or name (an OpenCLIP architecture)")
        if self.config_file is not None and self.config_file.stem != self.name:
            raise ValueError(
                f"config_file {self.config_file} registers architecture {self.config_file.stem!r}; "
                f"set name: {self.config_file.stem} or rename the file to {self.name}.json"
            )
        return self


def _openclip_args(text: str) -> tuple[str, str | None]:
    """open_clip_train's (model, pretrained) for a spec; random weights come from the run's seed (data.seed)."""
    from biomedica.models.spec import ModelLoadError, parse_model_spec

    try:
        spec = parse_model_spec(text)
        if spec.seed:
            raise ModelLoadError(f"model {text!r}: random initial weights follow data.seed in training; drop @{spec.seed}")
        return spec.openclip_args()
    except ModelLoadError as exc:
        raise ValueError(str(exc)) from None


class SourceConfig(_Strict):
    """One data source of the mixture. Give exactly one of `urls`, `archive`, `selection`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    urls: str | list[str] | None = Field(
        None, description="shard URLs or brace patterns (`https://host/a/{000000..000099}.tar`)"
    )
    archive: str | None = Field(None, description="root of a biomedica archive (reads manifest.json)")
    groups: list[str] | None = Field(None, description="license groups of `archive` (default: all it has)")
    held_out_fraction: float = Field(
        DEFAULT_HELD_OUT_FRACTION, ge=0, le=1,
        description="the share of articles evaluation holds out (archive.split): an `archive` source leaves them out "
        "(0 keeps them, with a warning); `urls` and `selection` sources are checked against it (warnings)",
    )
    selection: str | None = Field(
        None, description="key manifest (.parquet or .jsonl with columns shard, key) from `biomedica select`"
    )
    weight: float = Field(1.0, gt=0, description="share of drawn samples, relative to the other sources")
    num_samples: int | None = Field(
        None, ge=1, description="sample count when no sizes.json / manifest.json exists beside the shards"
    )
    auth_env: str | None = Field(None, description="env var holding a token for this source (hf:// uses HF_TOKEN)")
    s3_anonymous: bool = True
    s3_endpoint: str | None = None
    retries: int = Field(5, ge=0)
    timeout_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        given = [k for k in ("urls", "archive", "selection") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of urls, archive, selection (got {', '.join(given) or 'none'})")
        if self.groups is not None and not self.archive:
            raise ValueError("groups applies to an archive source only")
        bad = [g for g in self.groups or [] if g not in LICENSE_GROUPS]
        if bad:
            raise ValueError(f"unknown license group(s) {bad}; choose from {', '.join(LICENSE_GROUPS)}")
        return self


class DataConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    resampled: bool = Field(True, description="draw shards with replacement (needed for weights and step checkpoints)")
    workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto", description="DataLoader workers per training process; auto: this node's cores per process minus one, "
        "1..16 (biomedica.train.loader); an int keeps resampled shard draws identical across machines"
    )
    pin_memory: bool | Literal["auto"] = Field("auto", description="page-locked batches for async GPU copies; auto: on with CUDA")
    prefetch_factor: int = Field(4, ge=1, description="batches each DataLoader worker prepares ahead")
    seed: int = 0
    val: SourceConfig | None = Field(
        None, description="held-out shards for OpenCLIP's retrieval metrics (an archive: only its held-out eval articles)"
    )

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        return sources

    @model_validator(mode="after")
    def _mixture_needs_resampling(self) -> DataConfig:
        if not self.resampled and len(self.sources) > 1:
            raise ValueError("a mixture of several sources needs resampled: true (weights apply to drawn shards)")
        return self


class OptimConfig(_Strict):
    """AdamW and the learning-rate schedule (per-GPU batch; global = batch_size x GPUs x accum_freq)."""

    lr: float = Field(5e-4, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.98, ge=0, lt=1)
    eps: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.2, ge=0)
    warmup: int = Field(10000, ge=0, description="warm-up steps")
    lr_scheduler: Literal["cosine", "const", "const-cooldown"] = "cosine"
    batch_size: int = Field(256, ge=1, description="per GPU")
    accum_freq: int = Field(1, ge=1)
    grad_clip_norm: float | None = Field(None, gt=0)


class ScheduleConfig(_Strict):
    total_steps: int = Field(ge=1)
    checkpoint_every_steps: int = Field(ge=1)
    keep_checkpoints: Literal["all", "latest"] = Field(
        "all", description="latest: delete the previous epoch_N.pt when a new one is written"
    )

    @model_validator(mode="after")
    def _interval_fits(self) -> ScheduleConfig:
        if self.checkpoint_every_steps > self.total_steps:
            raise ValueError("checkpoint_every_steps is larger than total_steps")
        return self


class LoggingConfig(_Strict):
    report_to: list[Literal["tensorboard", "wandb"]] = Field(default_factory=lambda: ["tensorboard"])
    log_every_steps: int = Field(10, ge=1)


class EvalConfig(_Strict):
    """`biomedica eval` tasks run on the checkpoints (rank 0)."""

    tasks: list[str] = Field(default_factory=list, description="task names or files, as `biomedica eval --tasks`")
    every_checkpoints: int = Field(
        1, ge=1, description="run after every N-th checkpoint and after the last (also OpenCLIP's data.val retrieval)"
    )
    data_dir: Path | None = Field(None, description="where eval datasets live (default: biomedica eval's)")
    max_images: int | None = Field(None, ge=1, description="a seeded subset per task, for quick in-train looks")
    n_boot: int = Field(200, ge=0, description="bootstrap replicates for the confidence intervals")


class TrainConfig(_Strict):
    """A whole run: reproduce BMCA-CLIP or BiomedCLIP with one file (see configs/train/)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="run name: output_dir/name; the same name resumes")
    output_dir: Path = Path("runs")
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig
    logging: LoggingConfig = LoggingConfig()
    eval: EvalConfig = EvalConfig()
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads of the training process (1 is fastest for tiny CPU runs on a busy machine)"
    )
    extra_args: list[str] = Field(default_factory=list, description="more open_clip_train flags, passed as is")

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    @model_validator(mode="after")
    def _checks(self) -> TrainConfig:
        if self.data.val is not None and self.data.val.weight != 1.0:
            raise ValueError("data.val: weight has no meaning for validation data")
        return self


def _format_validation_error(source: str, exc: ValidationError) -> str:
    first = first_error(exc)
    return f"{source}: {first.location or '(top level)'}: {first.message}{first.suffix()}"


def parse_config(data: object, source: str = "<config>", base_dir: Path | None = None) -> TrainConfig:
    """Validate a config mapping; relative paths (output_dir, config_file) are resolved against base_dir."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings at the top level, got {type(data).__name__}")
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    if base_dir is not None:
        updates: dict = {}
        if not config.output_dir.is_absolute():
            updates["output_dir"] = base_dir / config.output_dir
        if config.model.config_file is not None and not config.model.config_file.is_absolute():
            updates["model"] = config.model.model_copy(update={"config_file": base_dir / config.model.config_file})
        config = config.model_copy(update=updates)
    return config


def load_config(path: Path, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML config; `output_dir` and `config_file` are relative to the current directory.

    `overrides` maps dotted field paths to values (`{"schedule.total_steps": 10}`), applied
    before validation.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value, path)
    return parse_config(data, str(path), base_dir=Path.cwd())


def with_total_steps(config: TrainConfig, steps: int) -> TrainConfig:
    """`config` run for `steps` optimiser steps (`train run --steps`): a checkpoint interval longer than
    that is cut to it, so a quick look at any recipe still ends with a checkpoint instead of an error."""
    schedule = config.schedule.model_copy(
        update={"total_steps": steps, "checkpoint_every_steps": min(steps, config.schedule.checkpoint_every_steps)}
    )
    return config.model_copy(update={"schedule": schedule})


def _set_dotted(data: object, dotted: str, value: object, path: Path) -> None:
    node = data
    keys = dotted.split(".")
    for key in keys[:-1]:
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: cannot set {dotted}: {key} is not a mapping")
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        raise ConfigError(f"{path}: cannot set {dotted}")
    node[keys[-1]] = value
