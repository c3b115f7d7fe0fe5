"""Evaluation tasks as data: YAML files validated by pydantic, shipped ones found by name.

A task file says what to evaluate (kind, classes, prompt templates, metric) and where the
data is (adapter + root + options, and a `data:` section telling a user where to get it).
A bad file fails with one message naming the file and the field.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from biomedica.eval.adapters import get_adapter
from biomedica.validation import first_error

TaskKind = Literal["classification", "multilabel", "retrieval"]
METRICS_BY_KIND: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "auroc", "macro_auroc", "top5_accuracy"),
    "multilabel": ("mean_average_precision", "macro_auroc"),
    "retrieval": (
        "mean_recall",
        "image_to_text_r1", "image_to_text_r5", "image_to_text_r10",
        "text_to_image_r1", "text_to_image_r5", "text_to_image_r10",
    ),
}
DATA_DIR_ENV = "BIOMEDICA_EVAL_DATA"


class TaskFileError(ValueError):
    """A task file that cannot be used; the message names the file, the field and the fix."""


class DataSource(BaseModel):
    """Where a user gets the dataset and how to lay it out (shown by `list-tasks` and on a skip)."""

    model_config = ConfigDict(extra="forbid")
    source: str  # URL or package
    license: str | None = None
    citation: str | None = None
    layout: str  # the folder layout expected under the task's root


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adapter: str
    root: str  # relative paths are resolved against the data dir (--data-dir / $BIOMEDICA_EVAL_DATA)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _options_fit_adapter(self) -> DatasetSpec:
        try:
            get_adapter(self.adapter).options_model.model_validate(self.options)
        except ValidationError as exc:
            first = first_error(exc)
            raise ValueError(f"options.{first.location}: {first.message} (adapter {self.adapter!r})") from None
        return self

    @field_validator("adapter")
    @classmethod
    def _known_adapter(cls, value: str) -> str:
        try:
            get_adapter(value)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        return value

    def resolve_root(self, data_dir: Path, task_file: Path | None = None) -> Path:
        """Absolute root: ~ and $VARS expanded; relative roots are under data_dir."""
        expanded = Path(os.path.expandvars(os.path.expanduser(self.root)))
        return expanded if expanded.is_absolute() else Path(data_dir) / expanded


_ONE, _LIST = "(one layout)", "(layouts)"  # union tags, dropped from error locations


class ClassSpec(BaseModel):
    """One class: the label value as it appears in the data, and the names used in prompts (ensembled)."""

    model_config = ConfigDict(extra="forbid")
    label: str
    names: list[str] = Field(min_length=1)


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    domain: str
    kind: TaskKind
    description: str = ""
    # one layout, or alternative layouts of the same data (official first, repackagings after): see dataset_layouts
    dataset: Annotated[
        Annotated[DatasetSpec, Tag(_ONE)] | Annotated[list[DatasetSpec], Tag(_LIST)],
        Discriminator(lambda v: _LIST if isinstance(v, list) else _ONE),
    ]
    train: DatasetSpec | None = None  # linear probe training split; else a group-aware split of `dataset`
    # linear probe validation split (chooses the regularisation); else a group-aware split of `train`
    validation: DatasetSpec | None = None
    classes: list[ClassSpec] | None = None
    templates: list[str] = Field(default_factory=lambda: ["a photo of {c}."])
    metric: str | None = None  # the primary metric (aggregated per domain); default per kind
    data: DataSource | None = None
    _source_file: Path | None = PrivateAttr(default=None)  # the YAML it came from (keys_file is relative to it)

    @field_validator("dataset", mode="before")
    @classmethod
    def _layout_list_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("give one dataset layout, or a non-empty list of alternative layouts")
        return value

    @field_validator("classes", mode="before")
    @classmethod
    def _expand_classes(cls, value: Any) -> Any:
        """Accept `[name, ...]` (label = name) or `{label: name | [names]}` as shorthand."""
        if isinstance(value, dict):
            return [
                {"label": str(label), "names": names if isinstance(names, list) else [names]}
                for label, names in value.items()
            ]
        if isinstance(value, list):
            return [
                {"label": str(item), "names": [str(item)]} if isinstance(item, (str, int)) else item for item in value
            ]
        return value

    @field_validator("templates")
    @classmethod
    def _templates_have_placeholder(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one prompt template")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        if self.kind in ("classification", "multilabel"):
            if not self.classes or len(self.classes) < (2 if self.kind == "classification" else 1):
                raise ValueError("classes: a classification task needs at least two classes")
            labels = [c.label for c in self.classes]
            if len(set(labels)) != len(labels):
                raise ValueError("classes: labels must be unique")
            lacking = [t for t in self.templates if "{c}" not in t]
            if lacking:
                raise ValueError(f"templates: {lacking[0]!r} has no {{c}} placeholder for the class name")
        allowed = METRICS_BY_KIND[self.kind]
        if self.metric is None:
            self.metric = allowed[0] if self.kind != "classification" else "accuracy"
        elif self.metric not in allowed:
            raise ValueError(f"metric: {self.metric!r} is not a {self.kind} metric; use one of {', '.join(allowed)}")
        return self

    @property
    def class_labels(self) -> list[str]:
        return [c.label for c in self.classes or []]

    @property
    def dataset_layouts(self) -> list[DatasetSpec]:
        """The dataset's alternative layouts in the order they are tried (a single `dataset:` is a list of one)."""
        return list(self.dataset) if isinstance(self.dataset, list) else [self.dataset]

    @property
    def source_dir(self) -> Path | None:
        """Folder of the task's YAML file (None for a task built in code); relative key lists live there."""
        return self._source_file.parent if self._source_file else None

    def layout_target(self, spec: DatasetSpec, data_dir: Path) -> Path:
        """What must exist for a layout to count as present: its `file` option when it has one, else its root."""
        root = spec.resolve_root(data_dir)
        file = spec.options.get("file")
        if isinstance(file, str) and file:
            path = Path(os.path.expandvars(os.path.expanduser(file)))
            return path if path.is_absolute() else root / path
        return root

    def present_layout(self, data_dir: Path) -> tuple[int, DatasetSpec, Path] | None:
        """(index, layout, root) of the first layout whose root (and file) exist under data_dir, else None."""
        for index, spec in enumerate(self.dataset_layouts):
            root = spec.resolve_root(data_dir)
            if root.exists() and self.layout_target(spec, data_dir).exists():
                return index, spec, root
        return None


def _format_error(path: Path | str, exc: ValidationError) -> str:
    first = first_error(exc)  # cross-field checks put the field first: "metric: ..."
    first = first._replace(location=first.location.replace(f".{_ONE}", "").replace(f".{_LIST}", ""))
    return f"{path}: field '{first.location or '(top level)'}': {first.message}{first.suffix()}. Fix the task file."


def parse_task(data: Any, source: Path | str = "<task>") -> TaskSpec:
    """A TaskSpec from already-parsed YAML, or TaskFileError naming `source` and the field."""
    if not isinstance(data, dict):
        raise TaskFileError(f"{source}: a task file must be a YAML mapping (name:, domain:, kind:, ...)")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskFileError(_format_error(source, exc)) from None


def load_task_file(path: Path) -> TaskSpec:
    """Read and validate one task YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskFileError(f"{path}: task file not found") from None
    except yaml.YAMLError as exc:
        raise TaskFileError(f"{path}: not valid YAML ({exc}). Fix the task file.") from None
    task = parse_task(data, path)
    task._source_file = path.resolve()
    return task


def shipped_task_files() -> dict[str, Path]:
    """Name -> path of the task files shipped in biomedica/eval/tasks/."""
    folder = Path(str(resources.files("biomedica.eval") / "tasks"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_tasks(selection: str, extra_dirs: list[Path] | None = None) -> list[TaskSpec]:
    """`all`, or a comma list of shipped task names, domain names (`domain:pathology`) and YAML paths."""
    files = shipped_task_files()
    for folder in extra_dirs or []:
        files.update({p.stem: p for p in sorted(Path(folder).glob("*.yaml"))})
    tasks: list[TaskSpec] = []
    for item in [s.strip() for s in selection.split(",") if s.strip()]:
        if item == "all":
            tasks.extend(load_task_file(p) for p in files.values())
        elif item.startswith("domain:"):
            chosen = [t for t in (load_task_file(p) for p in files.values()) if t.domain == item[7:]]
            if not chosen:
                raise TaskFileError(f"no shipped task has domain {item[7:]!r}")
            tasks.extend(chosen)
        elif item.endswith((".yaml", ".yml")) or "/" in item:
            tasks.append(load_task_file(Path(item)))
        elif item in files:
            tasks.append(load_task_file(files[item]))
        else:
            raise TaskFileError(f"unknown task {item!r}; see `biomedica eval list-tasks` or pass a path to a YAML file")
    unique: dict[str, TaskSpec] = {}
    for task in tasks:
        unique.setdefault(task.name, task)
    return list(unique.values())


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "eval-data"))
