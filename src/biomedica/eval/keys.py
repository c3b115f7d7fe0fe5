"""Key lists: the exact images a task evaluates, drawn reproducibly from the publisher's own label file.

CheXpert and RSNA forbid redistribution and need a registration, so their id lists cannot ship with
biomedica; instead the drawing is a pure function of the official file and a seed, so everyone who holds
the file gets the same list (its sha256 is printed and written into the list's header comment).

- chexpert-5x200: GLoRIA's rule (github.com/marshuang80/gloria, gloria/datasets/preprocess_datasets.py,
  `preprocess_chexpert_5x200_data`): train.csv, blanks -> 0, frontal views, for each of the five
  competition findings the rows where that finding is 1 and Atelectasis, Cardiomegaly, Consolidation, Edema,
  Pleural Effusion, Enlarged Cardiomediastinum, Lung Lesion, Lung Opacity, Pneumonia, Pneumothorax,
  Pleural Other, Fracture and Support Devices are all exactly 0 (uncertain -1 rows excluded); 200 drawn per
  finding. GLoRIA's `df.sample(n=200)` has no seed, so its list cannot be recreated: ours is seeded
  (numpy default_rng(seed), same rule), hence comparable in protocol, not image for image.
- rsna-pneumonia: GLoRIA's test split (same file, `preprocess_pneumonia_data`): stage_2_train_labels.csv
  grouped by patientId (sorted), Target = 1 if any box, then sklearn train_test_split(test_size=0.3,
  random_state=0) and of that 30% split(test_size=0.5, random_state=0), test = the first part: 15% of
  patients, natural prevalence (not balanced). Reproduced exactly with numpy's RandomState (what sklearn's
  ShuffleSplit uses). BiomedCLIP's and MedCLIP's "balanced RSNA test" lists were not released.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from biomedica.io.atomic import write_text_atomic

CHEXPERT_COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
CHEXPERT_OTHERS_ZERO = [  # the columns GLoRIA requires to be 0 besides the other four findings (not No Finding)
    "Enlarged Cardiomediastinum", "Lung Lesion", "Lung Opacity", "Pneumonia", "Pneumothorax",
    "Pleural Other", "Fracture", "Support Devices",
]


class KeyDrawError(ValueError):
    """The source file cannot give the list (wrong file, too few candidates); the message says which."""


def _read(path: Path, columns: list[str]) -> dict[str, list]:
    if not Path(path).is_file():
        raise KeyDrawError(f"{path}: file not found")
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        raise KeyDrawError(f"{path}: column(s) {', '.join(absent)} not found; is this the right file?")
    return {c: table.column(c).to_pylist() for c in columns}


def chexpert_5x200_keys(train_csv: Path, seed: int = 0, per_class: int = 200) -> list[str]:
    """`Path` values of CheXpert train.csv chosen by GLoRIA's 5x200 rule with a seeded draw (class by class)."""
    findings = CHEXPERT_COMPETITION + CHEXPERT_OTHERS_ZERO
    data = _read(train_csv, ["Path", "Frontal/Lateral", *findings])
    values = {c: np.array([0.0 if v is None else float(v) for v in data[c]]) for c in findings}
    frontal = np.array([v == "Frontal" for v in data["Frontal/Lateral"]])
    rng = np.random.default_rng(seed)
    keys: list[str] = []
    for finding in CHEXPERT_COMPETITION:
        mask = frontal & (values[finding] == 1)
        for other in findings:
            if other != finding:
                mask &= values[other] == 0
        candidates = np.flatnonzero(mask)
        if len(candidates) < per_class:
            raise KeyDrawError(f"{train_csv}: only {len(candidates)} frontal images with {finding} alone (need {per_class})")
        keys.extend(data["Path"][i] for i in rng.choice(candidates, size=per_class, replace=False))
    return keys


def _sklearn_split(n: int, test_size: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index order of sklearn's train_test_split(test_size, random_state) without stratify."""
    n_test = math.ceil(test_size * n)
    permutation = np.random.RandomState(random_state).permutation(n)
    return permutation[n_test:], permutation[:n_test]


def rsna_gloria_test_keys(labels_csv: Path, seed: int = 0) -> list[str]:
    """patientIds of GLoRIA's RSNA test split (15% of patients), from stage_2_train_labels.csv."""
    data = _read(labels_csv, ["patientId", "Target"])
    patients = sorted(set(data["patientId"]))  # pandas groupby(...).agg(list).reset_index() sorts the keys
    _, test_val = _sklearn_split(len(patients), 0.3, seed)
    test, _ = _sklearn_split(len(test_val), 0.5, seed)
    return [patients[i] for i in test_val[test]]


DRAWERS: dict[str, tuple[Callable[..., list[str]], str, str]] = {
    # task -> (function, key column, what --from must be)
    "chexpert-5x200": (chexpert_5x200_keys, "Path", "CheXpert train.csv (CheXpert-v1.0-small/train.csv or CheXpert-v1.0/train.csv)"),
    "rsna-pneumonia": (rsna_gloria_test_keys, "patientId", "stage_2_train_labels.csv"),
}


def write_keys(task: str, source: Path, out: Path, seed: int = 0, overwrite: bool = False) -> tuple[int, str]:
    """Draw the task's list from `source` and write it (comment header: rule, source, seed, sha256); (count, sha256).

    An existing `out` with other content (another seed, another source file, a list GLoRIA made) is
    the list earlier results were computed on: it is replaced only with `overwrite`.
    """
    if task not in DRAWERS:
        raise KeyDrawError(f"no key-list rule for task {task!r}; known: {', '.join(DRAWERS)}")
    draw, column, _ = DRAWERS[task]
    keys = draw(Path(source), seed=seed)
    body = "\n".join([column, *keys]) + "\n"
    digest = hashlib.sha256(body.encode()).hexdigest()
    header = (
        f"# {task} key list: {len(keys)} ids drawn by biomedica.eval.keys.{draw.__name__}\n"
        f"# from {Path(source).name} with seed {seed}; sha256 of the lines below: {digest}\n"
    )
    out = Path(out)
    if out.exists() and not overwrite and out.read_text(encoding="utf-8", errors="replace") != header + body:
        raise KeyDrawError(
            f"{out} already holds another key list (results may have been computed on it); "
            "pass --overwrite to replace it, or choose another --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, header + body)
    return len(keys), digest
