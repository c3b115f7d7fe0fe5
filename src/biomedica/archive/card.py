"""The dataset card: a `README.md` whose YAML tells Hugging Face `datasets` exactly what the archive holds.

Without it, `datasets` guesses each column's type from the first few samples and fails on a
record field that is null there and a string later ("Couldn't cast array of type string to
null"), or on a group whose first samples mix `.jpg` and `.png`. The card declares one
config per licence group (the group's tars, read by the packaged `webdataset` builder) with
the exact features of a sample, derived from `records.FIGURE_SCHEMA` by one Arrow -> datasets
mapping, so nothing is inferred. Finalize writes it at the archive root, so
`load_dataset(ARCHIVE)` works on the archive itself; `publish` renders the same card for a
hub repository with its extra configs. Pure Python + pyarrow + yaml (a core dependency):
no `datasets` or `huggingface_hub` import, so finalize stays light.

`datasets` 5.2 picks ONE packaged builder for all configs of a card, from the first config's
data files; the archive card therefore lists only WebDataset configs in `configs` and
describes the Parquet indexes in the Markdown (load them with `load_dataset("parquet", ...)`).
A card whose configs mix builders is refused by `render_card` with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from biomedica import __version__
from biomedica.archive.layout import ArchiveLayout
from biomedica.archive.units import UNKNOWN_LICENSE, UnitStats, completed_units
from biomedica.io.atomic import write_bytes_atomic
from biomedica.records import FIGURE_SCHEMA, LICENSE_GROUPS, SHARD_SCHEMA

CARD_NAME = "README.md"
CARD_MARKER = "<!-- biomedica dataset card: finalize rewrites this file; edits are lost -->"
WEBDATASET = "webdataset"
PARQUET = "parquet"
SPLIT = "train"

# PMC's page on the Open Access Subset's licences: the `other` licence of the card points there (the
# samples' own licences are per article, in json.license / license_url).
PMC_LICENSE_TERMS = "https://pmc.ncbi.nlm.nih.gov/tools/openftlist/"

# The Creative Commons ids the hub accepts in a card's `license` (huggingface.co/docs/hub/repositories-licenses);
# the hub refuses a card naming any other id, so a licence outside this list maps to the family `cc`.
HUB_CC_LICENSE_IDS = frozenset({
    "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
})
HUB_CC_FAMILY = "cc"

@dataclass(frozen=True)
class CardConfig:
    """One config of the card: its data files, exact features, licence and counts."""

    name: str  # "commercial", "noncommercial", "other", "index", "annotations-<table>", "embeddings-<name>"
    data_files: dict[str, list[str]]  # split -> paths/globs relative to the card's folder
    features: list[dict]  # datasets `Features` in card YAML form (Features._to_yaml_list: a list of {"name", "dtype"|"list"|"struct"})
    license: str | None  # hub licence id ("cc-by-4.0", ...) or "other"
    num_examples: int | None
    num_bytes: int | None
    shards: list[dict] = ()  # [{"file": "commercial/000000.tar", "samples": n, "bytes": b, "sha256": h}]
    builder: str | None = None  # packaged builder datasets uses: "webdataset" | "parquet"
    licenses: dict[str, int] = field(default_factory=dict)  # normalised licence -> samples (for the card text)
    default: bool = False


# --- Arrow -> datasets feature (the one mapping) -------------------------------------------

_ARROW_DTYPES = {
    pa.string(): "string", pa.large_string(): "large_string", pa.bool_(): "bool",
    pa.int8(): "int8", pa.int16(): "int16", pa.int32(): "int32", pa.int64(): "int64",
    pa.uint8(): "uint8", pa.uint16(): "uint16", pa.uint32(): "uint32", pa.uint64(): "uint64",
    pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64", pa.binary(): "binary",
    pa.large_binary(): "large_binary",
}


def arrow_feature(name: str, dtype: pa.DataType) -> dict[str, Any]:
    """One column in the card's YAML feature form (what datasets' `Features._to_yaml_list` writes)."""
    return {"name": name, **_feature_type(dtype)}


def _feature_type(dtype: pa.DataType) -> dict[str, Any]:
    if dtype in _ARROW_DTYPES:
        return {"dtype": _ARROW_DTYPES[dtype]}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = _feature_type(dtype.value_type)
        return {"list": inner["dtype"] if set(inner) == {"dtype"} else inner}
    if pa.types.is_fixed_size_list(dtype):
        inner = _feature_type(dtype.value_type)
        return {"list": inner["dtype"] if set(inner) == {"dtype"} else inner, "length": dtype.list_size}
    if pa.types.is_struct(dtype):
        return {"struct": [arrow_feature(dtype.field(i).name, dtype.field(i).type) for i in range(dtype.num_fields)]}
    if pa.types.is_timestamp(dtype):
        return {"dtype": f"timestamp[{dtype.unit}, tz={dtype.tz}]" if dtype.tz else f"timestamp[{dtype.unit}]"}
    raise ValueError(f"no datasets feature for Arrow type {dtype}; add it to archive/card.py's mapping")


def schema_features(schema: pa.Schema) -> list[dict[str, Any]]:
    """Every column of `schema` in card YAML form, in schema order."""
    return [arrow_feature(f.name, f.type) for f in schema]


# One sample of a shard as the webdataset builder yields it: the image lands in `jpg` or
# `png` (the other is None), `json` is the figure record with FIGURE_SCHEMA's exact types.
WEBDATASET_FEATURES: list[dict[str, Any]] = [
    {"name": "__key__", "dtype": "string"},
    {"name": "__url__", "dtype": "string"},
    {"name": "jpg", "dtype": "image"},
    {"name": "png", "dtype": "image"},
    {"name": "txt", "dtype": "string"},
    {"name": "json", "struct": schema_features(FIGURE_SCHEMA)},
]
INDEX_FEATURES: list[dict[str, Any]] = schema_features(SHARD_SCHEMA)


# --- configs of an archive --------------------------------------------------------------

def hub_license_id(code: str | None) -> str:
    """A normalised licence ("CC BY-NC 4.0") as the hub's licence id ("cc-by-nc-4.0").

    A Creative Commons licence the hub does not list (no version, "CC BY-ND 3.0", "CC BY 3.0 IGO")
    is the family id `cc`; anything else (public domain mark, unknown terms) is `other`.
    """
    if not code:
        return "other"
    candidate = code.lower().replace(" ", "-")
    if candidate in HUB_CC_LICENSE_IDS:
        return candidate
    return HUB_CC_FAMILY if code.startswith(("CC BY", "CC0")) else "other"


def _group_licenses(root: Path, group: str, shards: list, units: dict[int, UnitStats]) -> dict[str, int]:
    """Samples per normalised licence in a group's shards: from the unit markers, which count them as the
    shards are written; a marker from before that (no `licenses`) has its shard's Parquet index read."""
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for shard in shards:
        recorded = units[shard.unit].licenses.get(group) if shard.unit in units else None
        if recorded is not None:
            counts.update(recorded)
            continue
        index = (root / shard.path).with_suffix(".parquet")
        if index.is_file():
            column = pq.read_table(index, columns=["license"]).column("license").to_pylist()
            counts.update(value or UNKNOWN_LICENSE for value in column)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _tar_data_files(root: Path, group: str, names: list[str]) -> list[str]:
    """A glob when the folder's tars are exactly the manifest's (short on the hub), else the explicit list."""
    on_disk = sorted(p.name for p in (root / group).glob("[0-9]*.tar")) if (root / group).is_dir() else []
    if on_disk == sorted(names):
        return [f"{group}/*.tar"]
    return [f"{group}/{n}" for n in names]


def archive_configs(root: Path, units: dict[int, UnitStats] | None = None) -> list[CardConfig]:
    """One WebDataset config per licence group the manifest lists (first present group is the default).

    `units`: the archive's completed unit markers when the caller has read them already (finalize).
    """
    from biomedica.archive.manifest import Manifest

    root = Path(root)
    manifest = Manifest.read(root)
    if manifest is None:
        raise FileNotFoundError(f"{root}: no manifest.json; finalize the archive (run its ingest again) first")
    units = completed_units(root) if units is None else units
    configs: list[CardConfig] = []
    for group in LICENSE_GROUPS:
        if group not in manifest.groups or not manifest.groups[group].shards:
            continue
        g = manifest.groups[group]
        licenses = _group_licenses(root, group, g.shards, units)
        ids = {hub_license_id(code if code != UNKNOWN_LICENSE else None) for code in licenses}
        configs.append(CardConfig(
            name=group,
            data_files={SPLIT: _tar_data_files(root, group, [s.name for s in g.shards])},
            features=WEBDATASET_FEATURES,
            license=ids.pop() if len(ids) == 1 else "other",
            num_examples=g.samples,
            num_bytes=g.bytes,
            shards=[{"file": s.path, "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256} for s in g.shards],
            builder=WEBDATASET,
            licenses=licenses,
            default=not configs,
        ))
    return configs


def index_config(root: Path) -> CardConfig | None:
    """The shard Parquet indexes as a `parquet` config (for a folder of its own; see the module docstring)."""
    from biomedica.archive.manifest import Manifest

    manifest = Manifest.read(Path(root))
    if manifest is None:
        return None
    shards = manifest.shards()
    indexes = [(Path(root) / s.path).with_suffix(".parquet") for s in shards]
    return CardConfig(
        name="index", data_files={SPLIT: ["*/[0-9]*.parquet"]}, features=INDEX_FEATURES, license=None,
        num_examples=sum(s.samples for s in shards), num_bytes=sum(p.stat().st_size for p in indexes if p.is_file()),
        shards=[], builder=PARQUET,
    )


# --- rendering ----------------------------------------------------------------------------

def card_yaml(configs: list[CardConfig]) -> dict[str, Any]:
    """The front matter: `configs` (explicit data_files, one default) and `dataset_info` (exact features)."""
    builders = {c.builder or WEBDATASET for c in configs}
    if len(builders) > 1:
        raise ValueError(
            f"card configs mix builders {sorted(builders)}: datasets loads every config of one card with the "
            "builder of the first; put Parquet tables in a card (folder) of their own"
        )
    licenses = sorted({c.license for c in configs if c.license} | {
        hub_license_id(code if code != UNKNOWN_LICENSE else None) for c in configs for code in c.licenses})
    meta: dict[str, Any] = {}
    if licenses:
        meta["license"] = licenses if len(licenses) > 1 else licenses[0]
    if "other" in licenses:
        meta["license_name"] = "per-sample"  # every sample keeps its article's licence (json.license)
        meta["license_link"] = PMC_LICENSE_TERMS
    meta["task_categories"] = ["image-to-text", "zero-shot-image-classification"]
    meta["tags"] = ["biomedical", "pubmed-central", "webdataset", "image-caption", "biomedica"]
    meta["pretty_name"] = "BIOMEDICA archive"
    meta["configs"] = []
    for c in configs:
        entry: dict[str, Any] = {"config_name": c.name,
                                 "data_files": [{"split": s, "path": p} for s, p in c.data_files.items()]}
        if c.default:
            entry["default"] = True
        meta["configs"].append(entry)
    meta["dataset_info"] = []
    for c in configs:
        info: dict[str, Any] = {"config_name": c.name, "features": c.features}
        if c.num_examples is not None and c.num_bytes is not None:  # datasets ignores a split lacking either
            info["splits"] = [{"name": SPLIT, "num_bytes": c.num_bytes, "num_examples": c.num_examples}]
        if c.num_bytes is not None:
            info["download_size"] = c.num_bytes
            info["dataset_size"] = c.num_bytes
        meta["dataset_info"].append(info)
    return meta


def render_card(root: Path, configs: list[CardConfig], *, title: str, extra_sections: list[str] = ()) -> str:
    """README.md text: YAML front matter + Markdown (load snippets, configs, fields, shards, build, licence)."""
    root = Path(root)
    front = yaml.safe_dump(card_yaml(configs), sort_keys=False, allow_unicode=True, width=120)
    manifest = _manifest_dict(root)
    parts = [f"---\n{front}---\n", CARD_MARKER, f"# {title}\n", _summary(configs, manifest), _loading(configs),
             _configs_table(configs), _superseded(manifest), _fields(), _index_section(),
             _shards(configs), _built(manifest), _attribution(), _citation()]
    parts += list(extra_sections)
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def write_card(root: Path, configs: list[CardConfig] | None = None, units: dict[int, UnitStats] | None = None) -> Path:
    """Write `root/README.md` atomically (configs default to `archive_configs(root, units)`); return its path.

    Refuses (FileExistsError) to replace a README.md that is not a card it wrote.
    """
    root = Path(root)
    path = root / CARD_NAME
    if path.is_file() and CARD_MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        raise FileExistsError(f"{path}: a README.md biomedica did not write; move it away to get the dataset card")
    configs = archive_configs(root, units) if configs is None else configs
    write_bytes_atomic(path, render_card(root, configs, title="BIOMEDICA archive").encode("utf-8"))
    return path


def read_card_yaml(text: str) -> dict:
    """The YAML front matter of a card's text ({} when it has none)."""
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        raise ValueError("dataset card: front matter opened with --- but never closed")
    return yaml.safe_load(text[3:end]) or {}


# --- Markdown sections ------------------------------------------------------------------------

def _manifest_dict(root: Path) -> dict[str, Any]:
    path = ArchiveLayout(root).manifest
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _summary(configs: list[CardConfig], manifest: dict[str, Any]) -> str:
    samples = sum(c.num_examples or 0 for c in configs if c.builder in (None, WEBDATASET))
    totals = manifest.get("totals", {})
    return (
        "Figure-caption pairs from the PubMed Central Open Access subset, built by "
        "[biomedica](https://github.com/biomedica): one sample per figure graphic with its caption (`txt`), "
        "the original image bytes (`jpg` or `png`) and its figure record (`json`). "
        f"{samples:,} samples in {sum(len(c.shards) for c in configs):,} WebDataset shards"
        + (f" from {totals['articles']:,} articles" if "articles" in totals else "")
        + ", one config per licence group.\n"
    )


def _loading(configs: list[CardConfig]) -> str:
    name = next((c.name for c in configs if c.default), configs[0].name if configs else "commercial")
    return (
        "## Load it\n\n```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("PATH_OR_REPO", "{name}", split="train")                  # download + Arrow cache\n'
        f'it = load_dataset("PATH_OR_REPO", "{name}", split="train", streaming=True)  # no local copy\n'
        "```\n\nEach row: `__key__`, `__url__` (the shard), `jpg` or `png` (a PIL image; the other is None), "
        "`txt` (the caption), `json` (the figure record). WebDataset and OpenCLIP read the tars directly "
        "(`<group>/sizes.json` gives each shard's sample count).\n"
    )


def _configs_table(configs: list[CardConfig]) -> str:
    rows = ["## Configs\n", "| config | licence | samples | bytes | shards | licences in it |", "|---|---|---:|---:|---:|---|"]
    for c in configs:
        lic = ", ".join(f"{k} ({v:,})" for k, v in c.licenses.items()) or "-"
        rows.append(f"| `{c.name}`{' (default)' if c.default else ''} | {c.license or '-'} | "
                    f"{_n(c.num_examples)} | {_n(c.num_bytes)} | {len(c.shards)} | {lic} |")
    return "\n".join(rows) + "\n"


def _superseded(manifest: dict[str, Any]) -> str:
    n = manifest.get("totals", {}).get("samples_superseded", 0)
    return (
        "## Superseded samples\n\n"
        "Shards are never rewritten: when a later build re-reads a changed article, or one build reads the "
        f"same article twice, the older copies stay in their tars and in `sizes.json`. {n:,} samples are "
        "superseded; `superseded.parquet` lists them per shard (`key`, `article_id`, `shard`, ...). Drop them "
        "with an anti-join on (`__url__` shard, `__key__`), e.g. "
        "`ds.filter(lambda r: (r['__url__'].rsplit('/', 2)[-2] + '/' + r['__url__'].rsplit('/', 1)[-1], "
        "r['__key__']) not in superseded)`; biomedica's own readers skip them.\n"
    )


def _fields() -> str:
    rows = ["## Fields of `json`\n", "| field | type |", "|---|---|"]
    rows += [f"| `{f.name}` | {_type_name(f.type)} |" for f in FIGURE_SCHEMA]
    rows.append("\nEvery field but `key`, `caption`, `license_group` and the lists may be null.")
    return "\n".join(rows) + "\n"


def _index_section() -> str:
    return (
        "## Parquet indexes\n\n"
        "Beside each `<group>/NNNNNN.tar` lies `NNNNNN.parquet`: one row per sample, the figure record plus "
        "the byte offset and size of each tar member (one seek reads one sample). Query them with DuckDB "
        "(`SELECT * FROM '*/[0-9]*.parquet'`) or load them with "
        "`load_dataset(\"parquet\", data_files=\"PATH/*/[0-9]*.parquet\")`. Article-level fields (abstract, "
        "authors, references, MeSH) are in `articles/part-*.parquet`, one row per article.\n"
    )


def _shards(configs: list[CardConfig]) -> str:
    out = ["## Shards\n"]
    for c in configs:
        if not c.shards:
            continue
        out += [f"### {c.name}\n", "| file | samples | bytes | sha256 |", "|---|---:|---:|---|"]
        out += [f"| `{s['file']}` | {s['samples']:,} | {s['bytes']:,} | `{s.get('sha256') or '-'}` |" for s in c.shards]
        out.append("")
    return "\n".join(out) + "\n" if len(out) > 1 else ""


def _built(manifest: dict[str, Any]) -> str:
    if not manifest:
        return ""
    source = dict(manifest.get("source") or {})
    builds = source.pop("builds", [])
    lines = ["## How it was built\n",
             f"- biomedica {manifest.get('biomedica_version', '?')}, archive schema {manifest.get('schema_version', '?')}",
             f"- finalized at {manifest.get('finalized_at', '?')}",
             f"- source: `{json.dumps(source, sort_keys=True)}`",
             f"- totals: `{json.dumps(manifest.get('totals', {}), sort_keys=True)}`"]
    for b in builds:
        lines.append(f"- build: `{json.dumps(b, sort_keys=True)}`")
    return "\n".join(lines) + "\n"


def _attribution() -> str:
    return (
        "## Licence and attribution\n\n"
        "Each sample keeps its article's licence: `json.license` (normalised, e.g. `CC BY 4.0`), "
        "`json.license_group`, and `json.figure_license` when the figure carries its own, stricter terms. "
        "The `noncommercial` config must not be used commercially; `other` holds figures whose terms are "
        "unknown or not open - check each before any reuse. CC BY content (all CC licences here) requires "
        "attribution: when you redistribute a figure or its caption, credit the article - its title "
        "(`json.article_title`), journal (`json.journal`), DOI (`json.doi`) or PMCID (`json.pmcid`), and the "
        "authors (in `articles/part-*.parquet`) - and link the licence. Licences of the articles are listed "
        "in the configs table above.\n"
    )


def _citation() -> str:
    return (
        "## Citation\n\n```bibtex\n@software{biomedica,\n  title = {biomedica: PubMed Central Open Access as a "
        "deep-learning-ready image-caption archive},\n  year = {2026},\n  note = {Version "
        f"{__version__}}}\n}}\n```\n\nThe figures and captions come from the PubMed Central Open Access subset "
        f"({PMC_LICENSE_TERMS}); cite the articles you use.\n"
    )


def _type_name(dtype: pa.DataType) -> str:
    t = _feature_type(dtype)
    return t["dtype"] if "dtype" in t else f"list of {t['list']}" if "list" in t else "struct"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
