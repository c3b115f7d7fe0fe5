"""The figure taxonomy: global concepts, local concepts and panel types, from versioned YAML.

The shipped taxonomy is `biomedica-<version>.yaml` beside this file (package data). Users
extend it with their own YAML of the same shape: `load_taxonomy(extra=[path])` adds new
global concepts and appends local concepts to existing ones; a duplicate local id is an
error naming both files, so labels never become ambiguous.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from biomedica.validation import first_error

SHIPPED_TAXONOMY = "biomedica-1.0.yaml"


def slug(name: str) -> str:
    """snake_case id of a concept name: "Kaplan-Meier curve" -> "kaplan_meier_curve"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class LocalConcept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    global_id: str = ""
    synonyms: list[str] = Field(default_factory=list)
    prompt: str | None = None  # overrides the templates: the exact text prompt
    replaces: list[str] = Field(default_factory=list)


class GlobalConcept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    description: str = ""
    local: list[LocalConcept] = Field(default_factory=list)

    @field_validator("local", mode="before")
    @classmethod
    def _names_to_concepts(cls, value):
        items = []
        for item in value or []:
            if isinstance(item, str):
                item = {"name": item}
            if isinstance(item, dict) and "id" not in item and "name" in item:
                item = {**item, "id": slug(item["name"])}
            items.append(item)
        return items


class PanelType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    description: str = ""


class Taxonomy(BaseModel):
    """A loaded taxonomy: look concepts up by id; iterate local concepts with their global id."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    prompt_templates: list[str] = Field(default_factory=lambda: ["a biomedical figure showing {}."])
    panel_types: list[PanelType] = Field(default_factory=list)
    global_concepts: list[GlobalConcept]

    def model_post_init(self, _context) -> None:
        for concept in self.global_concepts:
            for local in concept.local:
                local.global_id = concept.id

    @property
    def local_concepts(self) -> list[LocalConcept]:
        return [local for concept in self.global_concepts for local in concept.local]

    def global_by_id(self) -> dict[str, GlobalConcept]:
        return {c.id: c for c in self.global_concepts}

    def local_by_id(self) -> dict[str, LocalConcept]:
        return {c.id: c for c in self.local_concepts}

    def prompts(self, concept: LocalConcept | GlobalConcept) -> list[str]:
        """Text prompts for zero-shot labelling: the concept's own prompt, or templates x names."""
        if isinstance(concept, LocalConcept) and concept.prompt:
            return [concept.prompt]
        names = [concept.name] + (concept.synonyms if isinstance(concept, LocalConcept) else [])
        return [template.format(name) for name in names for template in self.prompt_templates]

    def label(self) -> str:
        return f"{self.name} {self.version}"


def _read_yaml(path: Path | None) -> dict:
    try:
        if path is None:
            text = resources.files(__package__).joinpath(SHIPPED_TAXONOMY).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: taxonomy file not found") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path or SHIPPED_TAXONOMY}: not valid YAML ({exc}); fix the line it names") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path or SHIPPED_TAXONOMY}: a taxonomy is a mapping with name, version, global_concepts")
    return data


def _validated(data: dict, where: str) -> Taxonomy:
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        first = first_error(exc)
        raise ValueError(f"{where}: invalid taxonomy at {first.location}: {first.message}") from exc


def load_taxonomy(path: Path | None = None, extra: list[Path] | tuple[Path, ...] = ()) -> Taxonomy:
    """The taxonomy in `path` (default: the shipped one), extended by each file in `extra`."""
    base = _read_yaml(path)
    where = str(path or SHIPPED_TAXONOMY)
    taxonomy = _validated(base, where)
    for extension_path in extra:
        data = _read_yaml(Path(extension_path))
        data.setdefault("name", taxonomy.name)
        data.setdefault("version", taxonomy.version)
        extension = _validated(data, str(extension_path))
        known_globals = taxonomy.global_by_id()
        known_locals = taxonomy.local_by_id()
        for concept in extension.global_concepts:
            for local in concept.local:
                if local.id in known_locals:
                    raise ValueError(
                        f"{extension_path}: local concept id {local.id!r} already exists in {where} "
                        f"(under {known_locals[local.id].global_id!r}); give it another id"
                    )
            if concept.id in known_globals:
                known_globals[concept.id].local.extend(concept.local)
            else:
                taxonomy.global_concepts.append(concept)
        taxonomy.panel_types += [p for p in extension.panel_types if p.id not in {q.id for q in taxonomy.panel_types}]
        if extension.version != taxonomy.version:
            taxonomy.version = f"{taxonomy.version}+{extension.version}"
        taxonomy = _validated(taxonomy.model_dump(), where)
    _check_unique(taxonomy, where)
    return taxonomy


def _check_unique(taxonomy: Taxonomy, where: str) -> None:
    seen: dict[str, str] = {}
    for local in taxonomy.local_concepts:
        if local.id in seen:
            raise ValueError(f"{where}: local concept id {local.id!r} appears under {seen[local.id]!r} and {local.global_id!r}")
        seen[local.id] = local.global_id
    ids = [c.id for c in taxonomy.global_concepts]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{where}: duplicate global concept ids {sorted({i for i in ids if ids.count(i) > 1})}")
