"""Prompt presets for zero-shot scores, so a number can be compared with the paper that reported it.

    biomedica        the task file's own class names and templates (every synonym x every template)
    clip_benchmark   CLIP_benchmark 1.6.2's en_classnames / en_zeroshot_classification_templates
                     (tasks with an entry there: pcam, retinamnist = diabetic_retinopathy)
    biomedclip       BiomedCLIP's released template `this is a photo of {c}` on each class's first name

Preset data lives in eval/prompt_presets/<preset>.yaml with its source and licence. A task
without an entry in a preset falls back to its own prompts; the source string says so and the
result records it (runner: `prompts: {preset, source, templates, class_names}`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

import yaml

from biomedica.eval.tasks import TaskSpec

PRESETS = ("biomedica", "clip_benchmark", "biomedclip")
PRESET_DIR = Path(__file__).with_name("prompt_presets")


class Prompts(NamedTuple):
    class_names: list[list[str]]  # per class, in the task's class order
    templates: list[str]
    source: str


@cache
def load_preset(preset: str) -> dict:
    """The parsed preset file (source, tasks, optional templates for every task)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown prompt preset {preset!r}; use one of {', '.join(PRESETS)}")
    if preset == "biomedica":
        return {"source": "task file", "tasks": {}}
    return yaml.safe_load((PRESET_DIR / f"{preset}.yaml").read_text(encoding="utf-8"))


def has_preset(task: TaskSpec, preset: str) -> bool:
    """Whether `preset` has prompts for this task (False: resolve_prompts falls back to the task's own)."""
    data = load_preset(preset)
    return preset == "biomedica" or task.name in data["tasks"] or bool(data.get("templates"))


def clip_benchmark_dataset(task_name: str) -> str | None:
    """CLIP_benchmark's dataset name for one of our tasks (pcam -> pcam), or None."""
    entry = load_preset("clip_benchmark")["tasks"].get(task_name)
    return entry["dataset"] if entry else None


def resolve_prompts(task: TaskSpec, preset: str = "biomedica") -> Prompts:
    """(class names per class, templates, source) of `task` under `preset`."""
    own = Prompts([list(c.names) for c in task.classes or []], list(task.templates), f"task file {task.name}")
    data = load_preset(preset)
    if preset == "biomedica":
        return own
    entry = data["tasks"].get(task.name)
    if entry is not None:
        missing = [label for label in task.class_labels if label not in entry["classes"]]
        if missing:
            raise ValueError(f"{PRESET_DIR / (preset + '.yaml')}: task {task.name} lacks classes {missing}; fix the preset")
        names = [[str(entry["classes"][label])] for label in task.class_labels]
        return Prompts(names, list(entry["templates"]), f"{data['source']}, entry {entry.get('dataset', task.name)}")
    if data.get("templates"):
        names = [[c.names[0]] for c in task.classes or []]
        return Prompts(names, list(data["templates"]), f"{data['source']}; class names: first name per class in task file {task.name}")
    return Prompts(own.class_names, own.templates, f"task file {task.name} (no {preset} prompts for this task)")
