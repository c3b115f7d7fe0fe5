"""Resolve data sources to the exact shards they stream and how many samples each holds.

Three kinds of source (config `data.sources[*]`):

- `urls`: shard URLs or brace patterns; counts come from the `sizes.json` beside the shards
  (what `biomedica ingest` and OpenCLIP use), else from `num_samples`, never guessed;
- `archive`: the root of a biomedica archive; shards and counts come from its
  `manifest.json` (`archive.manifest.Manifest`, complete units only), for the chosen license
  `groups`. The articles evaluation holds out (`archive.split`, `held_out_fraction`, 5% by
  default) are left out: each shard's index (`NNNNNN.parquet`) is read to list the keys to keep;
  so are the samples the archive's `superseded.parquet` lists (older copies of changed articles);
  As the validation source (`data.val`, role "val") it keeps only those held-out articles;
- `selection`: a *key manifest* (`archive.selection`), the subset format of `biomedica select`:
  a table with one row per sample and (at least) the columns `shard` (the tar's URL or path;
  relative values are resolved against the manifest's own folder) and `key` (the sample key,
  `PMC<id>_<n>`), stored as Parquet (`.parquet`) or JSON Lines (`.jsonl`). `select` already
  left out the held-out articles and records the split it used. Only the listed
  samples are streamed (`biomedica.net.stream --keys`): when the shard has its archive
  index beside it (`NNNNNN.parquet`), only the byte ranges of the listed samples are read;
  otherwise the shard is read in full and filtered. Counts are exact (the rows per shard).

Held-out overlap (training sources): an `archive` source with `held_out_fraction: 0`, a key
manifest or a `selection.json` beside `urls` shards recording a split that does not cover the
one evaluation holds out (`held_out_fraction` of the source: 5% by default, salt
`biomedica-eval-v1`), or `urls` shards whose indexes list samples of held-out articles, each
give a warning (the train summary and `plan.json`); what cannot be checked gives a note.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Literal

import braceexpand

from biomedica.archive.keys import sample_article
from biomedica.archive.layout import MANIFEST_NAME, SIZES_NAME
from biomedica.archive.manifest import Manifest, ManifestError
from biomedica.archive.selection import SELECTION_NAME, KeyManifest, SelectionManifestError, parse_key_manifest
from biomedica.archive.split import HeldOutSplit, is_held_out
from biomedica.archive.superseded import SUPERSEDED_NAME, superseded_from_bytes
from biomedica.io.locations import is_remote, join_url, local_path, parent_url, sibling_url, url_scheme
from biomedica.net.errors import FetchError, NotFoundError
from biomedica.net.stream import STREAM_RETRY, FetchOptions, index_url_of, read_bytes
from biomedica.train.config import SourceConfig


class SourceError(ValueError):
    """A source that cannot be resolved; the message names the source, the location and the fix."""


@dataclass(frozen=True)
class Shard:
    """One shard of a source: where it is, how many samples it yields, and the key filter if any."""

    url: str
    samples: int
    keys: tuple[str, ...] | None = None  # only these samples (a key manifest); None: all
    shard_samples: int | None = None  # all samples of the tar (from sizes.json) when keys filter it

    @property
    def sparse(self) -> bool:
        """A key filter keeping at most half of the shard (or of unknown size): worth byte-range reads."""
        return self.keys is not None and (self.shard_samples is None or 2 * self.samples <= self.shard_samples)


@dataclass
class ResolvedSource:
    name: str
    weight: float
    shards: list[Shard]
    fetch: FetchOptions
    origin: str  # where the counts came from: sizes.json, manifest.json, selection, num_samples
    notes: list[str] = field(default_factory=list)
    held_out: HeldOutSplit | None = None  # the eval split left out (by train, or as a selection records it)
    warnings: list[str] = field(default_factory=list)  # this source may hold evaluation articles

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)


def fetch_options(source: SourceConfig) -> FetchOptions:
    return FetchOptions(
        auth_env=source.auth_env,
        retry=replace(STREAM_RETRY, retries=source.retries),
        connect_timeout=source.timeout_s,
        read_timeout=source.timeout_s,
        s3_anonymous=source.s3_anonymous,
        s3_endpoint=source.s3_endpoint,
    )


def _absolute(url: str) -> str:
    """Local paths made absolute (DataLoader workers and torchrun ranks may not share the cwd)."""
    if url_scheme(url) == "file":
        return os.path.abspath(local_path(url))
    return url


def _read_json(url: str, options: FetchOptions, source: str) -> dict | None:
    try:
        data = read_bytes(url, options)
    except NotFoundError:
        return None
    except FetchError as exc:
        raise SourceError(f"source {source}: {exc}") from None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise SourceError(f"source {source}: {url} is not valid JSON ({exc})") from None


def expand_urls(urls: str | list[str]) -> list[str]:
    """Brace patterns expanded, in order; `::` separates several patterns in one string."""
    patterns = urls.split("::") if isinstance(urls, str) else list(urls)
    expanded: list[str] = []
    for pattern in patterns:
        expanded += list(braceexpand.braceexpand(pattern.strip()))
    return [u for u in expanded if u]


def _resolve_urls(source: SourceConfig, options: FetchOptions) -> tuple[list[Shard], str]:
    urls = [_absolute(u) for u in expand_urls(source.urls)]
    if not urls:
        raise SourceError(f"source {source.name}: urls expands to no shard")
    if source.num_samples is not None:
        per_shard, extra = divmod(source.num_samples, len(urls))
        return [Shard(u, per_shard + (1 if i < extra else 0)) for i, u in enumerate(urls)], "num_samples"
    sizes_by_dir: dict[str, dict] = {}
    shards = []
    for url in urls:
        folder = parent_url(url)
        if folder not in sizes_by_dir:
            sizes = _read_json(sibling_url(url, SIZES_NAME), options, source.name)
            if sizes is None:
                raise SourceError(
                    f"source {source.name}: no {SIZES_NAME} in {folder} to count the samples of its shards; "
                    f"add one ({{\"000000.tar\": n, ...}}) or set num_samples for this source"
                )
            sizes_by_dir[folder] = sizes
        name = url.rsplit("/", 1)[-1]
        if name not in sizes_by_dir[folder]:
            raise SourceError(
                f"source {source.name}: {name} is not listed in {sibling_url(url, SIZES_NAME)}; "
                "the shard may not exist (check the brace pattern) or sizes.json is stale"
            )
        shards.append(Shard(url, int(sizes_by_dir[folder][name])))
    return shards, SIZES_NAME


def _resolve_archive(source: SourceConfig, options: FetchOptions) -> tuple[list[Shard], str]:
    root = _absolute(source.archive.rstrip("/"))
    manifest_url = join_url(root, MANIFEST_NAME)
    try:
        manifest = Manifest.from_bytes(read_bytes(manifest_url, options), manifest_url)
    except NotFoundError:
        raise SourceError(
            f"source {source.name}: no {MANIFEST_NAME} at {root}; point `archive` at the folder `biomedica ingest` "
            "wrote, or list the shards with `urls`"
        ) from None
    except (FetchError, ManifestError) as exc:
        raise SourceError(f"source {source.name}: {exc}") from None
    wanted = source.groups or list(manifest.groups)
    missing = [g for g in wanted if g not in manifest.groups]
    if missing:
        raise SourceError(
            f"source {source.name}: archive {root} has no samples in group(s) {missing}; "
            f"it has {sorted(manifest.groups) or 'none'}"
        )
    superseded = _read_superseded(root, options, source.name)
    shards = []
    for entry in manifest.shards(wanted):
        if entry.samples <= 0:
            continue
        url, skip = join_url(root, entry.path), superseded.get(entry.path)
        if not skip:
            shards.append(Shard(url, entry.samples))
            continue
        keys = [k for k in _shard_keys(url, options, source.name) if k not in skip]  # older copies left out
        if keys:
            shards.append(Shard(url, len(keys), tuple(sorted(keys)), entry.samples))
    if not shards:
        raise SourceError(f"source {source.name}: archive {root} lists no shard for {wanted}")
    return shards, MANIFEST_NAME


def _read_superseded(root: str, options: FetchOptions, source: str) -> dict[str, frozenset[str]]:
    """`<group>/<shard>.tar` -> superseded keys, from the archive's `superseded.parquet` (none when absent)."""
    url = join_url(root, SUPERSEDED_NAME)
    try:
        return superseded_from_bytes(read_bytes(url, options))
    except NotFoundError:
        return {}
    except FetchError as exc:
        raise SourceError(f"source {source}: {exc}") from None


def _shard_keys(url: str, options: FetchOptions, source: str) -> list[str]:
    index_url = index_url_of(url)
    try:
        return _read_split_columns(index_url, options).column("key").to_pylist()
    except NotFoundError:
        raise SourceError(f"source {source}: no shard index {index_url} to leave out its superseded samples; "
                          "restore it from the archive") from None
    except FetchError as exc:
        raise SourceError(f"source {source}: {exc}") from None


def _read_split_columns(index_url: str, options: FetchOptions):
    """The key and pmcid columns of a shard index (a local file reads only those columns' pages)."""
    import pyarrow.parquet as pq

    columns = ["key", "pmcid"]
    if url_scheme(index_url) == "file":
        try:
            return pq.read_table(local_path(index_url), columns=columns)
        except FileNotFoundError:
            raise NotFoundError(index_url, "no such file") from None
    return pq.read_table(io.BytesIO(read_bytes(index_url, options)), columns=columns)


def _split_by_held_out(
    shards: list[Shard], split: HeldOutSplit, options: FetchOptions, source: str, keep_held_out: bool
) -> tuple[list[Shard], int]:
    """Shards keyed to one side of the eval split, and how many samples of the other side were dropped.

    `keep_held_out` False (training): the samples of articles evaluation does not hold out;
    True (validation): only the held-out ones, so validation never sees a training article.
    The split is hashed once per article, not per sample.
    """
    held_by_article: dict[str, bool] = {}
    kept_shards, dropped = [], 0
    for shard in shards:
        index_url = index_url_of(shard.url)
        if index_url is None:
            raise SourceError(f"source {source}: {shard.url} is not a .tar shard, so it has no index to split by; "
                              "set held_out_fraction: 0 or fix the archive's manifest")
        try:
            index = _read_split_columns(index_url, options)
        except NotFoundError:
            raise SourceError(
                f"source {source}: no shard index {index_url} to find the held-out eval articles; "
                "restore it, or set held_out_fraction: 0 to train on every article"
            ) from None
        except FetchError as exc:
            raise SourceError(f"source {source}: {exc}") from None
        if index.num_rows != (shard.shard_samples if shard.keys is not None else shard.samples):
            raise SourceError(
                f"source {source}: shard index {index_url} has {index.num_rows} rows but {MANIFEST_NAME} counts "
                f"{shard.samples} samples in {shard.url}; the index is stale, so the eval split would be wrong: "
                "check the archive with `biomedica inspect ARCHIVE --verify` and rebuild that unit"
            )
        keys = []
        allowed = set(shard.keys) if shard.keys is not None else None  # e.g. superseded copies already left out
        total = shard.samples
        for key, pmcid in zip(index.column("key").to_pylist(), index.column("pmcid").to_pylist()):
            if allowed is not None and key not in allowed:
                continue
            article = sample_article(key, pmcid)
            held = held_by_article.get(article)
            if held is None:
                held = held_by_article[article] = is_held_out(article, split.fraction, split.salt)
            if held == keep_held_out:
                keys.append(key)
        dropped += total - len(keys)
        if len(keys) == index.num_rows:
            kept_shards.append(shard)
        elif keys:
            kept_shards.append(Shard(shard.url, len(keys), tuple(sorted(keys)), shard.shard_samples or shard.samples))
    return kept_shards, dropped


def _read_key_manifest(url: str, options: FetchOptions) -> KeyManifest:
    """The key manifest at `url` (local or remote), in the format `archive.selection` defines."""
    try:
        return parse_key_manifest(read_bytes(url, options), url)
    except SelectionManifestError as exc:
        raise SourceError(str(exc)) from None


def _resolve_selection(source: SourceConfig, options: FetchOptions) -> tuple[list[Shard], str, HeldOutSplit | None]:
    url = _absolute(source.selection)
    try:
        manifest = _read_key_manifest(url, options)
    except NotFoundError:
        raise SourceError(f"source {source.name}: key manifest {url} not found") from None
    except FetchError as exc:
        raise SourceError(f"source {source.name}: {exc}") from None
    base = parent_url(url)
    keys_by_shard: OrderedDict[str, set[str]] = OrderedDict()
    for shard, key in manifest.rows:
        if not shard or not key:
            raise SourceError(f"source {source.name}: {url} has a row with an empty shard or key")
        keys_by_shard.setdefault(join_url(base, shard), set()).add(key)
    if not keys_by_shard:
        raise SourceError(f"source {source.name}: key manifest {url} is empty")
    sizes_by_dir: dict[str, dict] = {}
    shards = []
    for shard, keys in keys_by_shard.items():
        folder = parent_url(shard)
        if folder not in sizes_by_dir:
            sizes_by_dir[folder] = _read_json(sibling_url(shard, SIZES_NAME), options, source.name) or {}
        total = sizes_by_dir[folder].get(shard.rsplit("/", 1)[-1])
        shards.append(Shard(shard, len(keys), tuple(sorted(keys)), None if total is None else int(total)))
    return shards, "selection", manifest.held_out


def resolve_source(source: SourceConfig, role: Literal["train", "val"] = "train") -> ResolvedSource:
    """The shards of one source with their sample counts (reads sizes/manifest files, not shards).

    `role` matters for an `archive` source only: a training source leaves out the articles
    evaluation holds out; a validation source (`data.val`) keeps only those, so the
    validation metrics are measured on articles training never saw. A training source that
    may hold evaluation articles gets a warning (see `held_out_overlap`).
    """
    options = fetch_options(source)
    notes: list[str] = []
    warnings: list[str] = []
    held_out = None
    split = HeldOutSplit(source.held_out_fraction)
    if source.archive:
        shards, origin = _resolve_archive(source, options)
        held_out = split
        if role == "val":
            if not held_out.enabled:
                raise SourceError(
                    f"data.val {source.name}: held_out_fraction 0 holds out no article, so validation would be "
                    "training data; set held_out_fraction > 0 (the share evaluation holds out) or give urls"
                )
            shards, dropped = _split_by_held_out(shards, held_out, options, source.name, keep_held_out=True)
            notes.append(f"data.val {source.name}: only the held-out eval articles (fraction {held_out.fraction:g}); "
                         f"{dropped:,} training sample(s) left out")
            if not shards:
                raise SourceError(f"data.val {source.name}: no sample belongs to a held-out eval article; "
                                  "raise held_out_fraction, or give validation shards with urls")
        elif held_out.enabled:
            shards, left_out = _split_by_held_out(shards, held_out, options, source.name, keep_held_out=False)
            notes.append(f"{left_out:,} sample(s) of held-out eval articles left out (fraction {held_out.fraction:g})")
            if not shards:
                raise SourceError(f"source {source.name}: every sample belongs to a held-out eval article; "
                                  "lower held_out_fraction")
        else:
            warnings.append(f"source {source.name}: held_out_fraction 0 trains on the articles evaluation holds out; "
                            f"remove it (default {HeldOutSplit().fraction:g}) unless no evaluation uses this archive")
    elif source.selection:
        shards, origin, held_out = _resolve_selection(source, options)
        if role == "train":
            _check_key_manifest(source.name, shards, held_out, split, notes, warnings)
    else:
        shards, origin = _resolve_urls(source, options)
        if role == "train":
            _check_url_shards(source.name, shards, split, options, notes, warnings)
    if any(is_remote(s.url) for s in shards) and source.auth_env and not os.environ.get(source.auth_env):
        notes.append(f"environment variable {source.auth_env} is not set: authenticated reads will fail")
    return ResolvedSource(source.name, source.weight, shards, options, origin, notes, held_out, warnings)


# --- held-out overlap: does a training source hold articles evaluation holds out? -----------------

HELD_OUT_CHECK_SHARDS = 256  # shard indexes read per `urls` source to count held-out samples (one small read each)
_FIX = "select the shards with `biomedica select --exclude-held-out`, or train from an `archive` source"


def held_out_overlap(name: str, recorded: HeldOutSplit, split: HeldOutSplit, where: str) -> str | None:
    """A warning when data made with split `recorded` may hold articles evaluation's `split` holds out.

    The split is a threshold on a salted hash, so `recorded` leaves out every article `split` holds
    out exactly when the salts agree and its fraction is at least as large.
    """
    if not recorded.enabled:
        return f"source {name}: {where} was built with --include-held-out (held-out fraction 0): it holds the eval articles; {_FIX}"
    if recorded.salt != split.salt or recorded.fraction < split.fraction:
        return (f"source {name}: {where} left out held-out split (fraction {recorded.fraction:g}, salt {recorded.salt!r}), "
                f"not the one evaluation holds out (fraction {split.fraction:g}, salt {split.salt!r}): some eval "
                f"articles may be in it; {_FIX} (or set this source's held_out_fraction to the eval split)")
    return None


def _not_checked(name: str, split: HeldOutSplit) -> str | None:
    if split.enabled:
        return None
    return (f"source {name}: held_out_fraction 0: not checked for articles evaluation holds out; "
            f"remove it (default {HeldOutSplit().fraction:g}) to check")


def _check_key_manifest(name: str, shards: list[Shard], recorded: HeldOutSplit | None, split: HeldOutSplit,
                        notes: list[str], warnings: list[str]) -> None:
    """A key manifest's recorded split against eval's; without a record, its keys are counted (no I/O)."""
    skipped = _not_checked(name, split)
    if skipped:
        warnings.append(skipped)
        return
    if recorded is not None:
        warning = held_out_overlap(name, recorded, split, "its key manifest")
        if warning:
            warnings.append(warning)
        return
    keys = [key for shard in shards for key in shard.keys or ()]
    held = sum(split.holds(key) for key in keys)
    if held:
        warnings.append(f"source {name}: the key manifest records no held-out split and {held:,} of its {len(keys):,} "
                        f"sample(s) belong to held-out eval articles (fraction {split.fraction:g}); {_FIX}")
    else:
        notes.append(f"source {name}: the key manifest records no held-out split; none of its {len(keys):,} "
                     "sample(s) belongs to a held-out eval article")


def _check_url_shards(name: str, shards: list[Shard], split: HeldOutSplit, options: FetchOptions,
                      notes: list[str], warnings: list[str]) -> None:
    """`selection.json` beside the shards (select records its split there); else count from the shard indexes."""
    skipped = _not_checked(name, split)
    if skipped:
        warnings.append(skipped)
        return
    unrecorded: list[Shard] = []
    by_folder: OrderedDict[str, list[Shard]] = OrderedDict()
    for shard in shards:
        by_folder.setdefault(parent_url(shard.url), []).append(shard)
    for folder, folder_shards in by_folder.items():
        recorded = _recorded_split(join_url(folder, SELECTION_NAME), options)
        if recorded is None:
            unrecorded += folder_shards
            continue
        warning = held_out_overlap(name, recorded, split, f"the selection in {folder}")
        if warning:
            warnings.append(warning)
        else:
            notes.append(f"source {name}: {folder} is a selection that left out the held-out eval articles "
                         f"(fraction {recorded.fraction:g})")
    if unrecorded:
        _count_held_out(name, unrecorded, split, options, notes, warnings)


def _recorded_split(url: str, options: FetchOptions) -> HeldOutSplit | None:
    """The held-out split a `selection.json` records; None when there is none (or it cannot be read)."""
    try:
        record = json.loads(read_bytes(url, options))
        return HeldOutSplit.from_dict(record["held_out"])
    except (FetchError, ValueError, KeyError, TypeError):
        return None


def _count_held_out(name: str, shards: list[Shard], split: HeldOutSplit, options: FetchOptions,
                    notes: list[str], warnings: list[str]) -> None:
    """Count the samples of held-out articles in the shards' indexes (`NNNNNN.parquet` beside each tar)."""
    checked = shards[:HELD_OUT_CHECK_SHARDS]
    held = samples = unindexed = 0
    for shard in checked:
        index_url = index_url_of(shard.url)
        if index_url is None:
            unindexed += 1
            continue
        try:
            index = _read_split_columns(index_url, options)
        except (FetchError, OSError, ValueError):  # NotFoundError is a FetchError; a broken index is unchecked too
            unindexed += 1
            continue
        allowed = set(shard.keys) if shard.keys is not None else None
        for key, pmcid in zip(index.column("key").to_pylist(), index.column("pmcid").to_pylist()):
            if allowed is None or key in allowed:
                samples += 1
                held += split.holds(key, pmcid)
    scope = f"{len(checked) - unindexed:,} of {len(shards):,} shard(s)"
    if held:
        warnings.append(f"source {name}: {held:,} of {samples:,} sample(s) in {scope} belong to held-out eval articles "
                        f"(fraction {split.fraction:g}); {_FIX}")
    elif unindexed == len(checked):
        notes.append(f"source {name}: no selection.json and no shard index (NNNNNN.parquet) beside its shards, so "
                     "whether it holds held-out eval articles cannot be checked")
    else:
        notes.append(f"source {name}: no held-out eval article in {samples:,} sample(s) of {scope} checked")
    if unindexed and held:
        notes.append(f"source {name}: {unindexed:,} shard(s) have no index and were not checked for held-out articles")
