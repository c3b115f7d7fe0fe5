"""The dataset-adapter registry: each adapter turns a folder/file + options into an EvalDataset.

Adapters register themselves with `@register_adapter(name, OptionsModel)`; a task file names
the adapter and its options, and the options are validated by that adapter's pydantic model
when the task is loaded, so a typo fails before any image is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from biomedica.eval.images import ImageRef


class DatasetMissing(Exception):
    """The data of a task is not on this machine (or a needed package is absent): the task is skipped."""


class DatasetInvalid(Exception):
    """The data is there but unusable (empty, unreadable, wrong columns); the message says how to fix it."""


class AdapterOptions(BaseModel):
    """Base of every adapter's options: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class EvalDataset:
    """What an adapter yields: image references plus raw labels (str or list of str) and/or captions."""

    images: list[ImageRef]
    labels: list[str] | list[list[str]] | None = None
    captions: list[list[str]] | None = None
    groups: list[str] | None = None  # e.g. the article of each image, for splits and reports
    notes: list[str] = field(default_factory=list)  # things worth one line in the log (skipped files)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        for name in ("labels", "captions", "groups"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.images):
                raise ValueError(f"{name} has {len(values)} entries for {len(self.images)} images")

    def compute_fingerprint(self, adapter: str, options: dict) -> str:
        """sha1 over adapter, options, image identities, labels and captions (cache key of embeddings)."""
        digest = hashlib.sha1()
        digest.update(json.dumps([adapter, options], sort_keys=True, default=str).encode())
        for image in self.images:
            digest.update(image.identity().encode())
            digest.update(b"\0")
        digest.update(json.dumps([self.labels, self.captions], default=str).encode())
        self.fingerprint = digest.hexdigest()[:16]
        return self.fingerprint

    def subset(self, indices: list[int]) -> EvalDataset:
        """The same dataset restricted to `indices` (order kept as given)."""
        pick = lambda values: None if values is None else [values[i] for i in indices]  # noqa: E731
        return EvalDataset(
            images=[self.images[i] for i in indices],
            labels=pick(self.labels),
            captions=pick(self.captions),
            groups=pick(self.groups),
            notes=list(self.notes),
        )


AdapterLoader = Callable[[Path, AdapterOptions], EvalDataset]


@dataclass(frozen=True)
class Adapter:
    name: str
    options_model: type[AdapterOptions]
    load: AdapterLoader
    summary: str


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(name: str, options_model: type[AdapterOptions], *aliases: str):
    """Decorator: register `load(root, options) -> EvalDataset` under `name` (and aliases)."""

    def decorate(load: AdapterLoader) -> AdapterLoader:
        summary = (load.__doc__ or "").strip().splitlines()[0] if load.__doc__ else ""
        for key in (name, *aliases):
            if key in ADAPTERS:
                raise ValueError(f"adapter {key!r} registered twice")
            ADAPTERS[key] = Adapter(name=name, options_model=options_model, load=load, summary=summary)
        return load

    return decorate


def get_adapter(name: str) -> Adapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown dataset adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}") from None


def load_dataset(adapter_name: str, root: Path, options: dict) -> EvalDataset:
    """Validate options, check the root exists (DatasetMissing if not), load and fingerprint."""
    adapter = get_adapter(adapter_name)
    parsed = adapter.options_model.model_validate(options)
    if not Path(root).exists():
        raise DatasetMissing(f"data not found at {root}")
    dataset = adapter.load(Path(root), parsed)
    if not dataset.images:
        raise DatasetInvalid(f"{root}: the {adapter_name} adapter found no images; check the folder layout")
    dataset.compute_fingerprint(adapter.name, parsed.model_dump(mode="json"))
    return dataset
