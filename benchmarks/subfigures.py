"""Subfigure separation: quality and speed of the panel detectors and the caption splitter.

Usage:
    python benchmarks/subfigures.py                               # gutter only, real + synthetic sets
    python benchmarks/subfigures.py --weights detector.pt         # also the model detector
    python benchmarks/subfigures.py --synthetic 500 --archive A   # the held-out pool from archive A
    python benchmarks/subfigures.py --ocr                         # also caption + OCR letters (biomedica[ocr])

It runs `biomedica eval subfigures` (curate.subfigures.evaluate) and prints its table:
- real: every real figure image in ../shared/fixtures, panel boxes labelled by hand
  (tests/data/subfigures/real_panels.json and its README: who, how, the convention), scored as
  ImageCLEF 2016 separation accuracy (figure-level: every panel found at IoU >= 0.5 and no extra
  one), VOC mAP@0.5 and mean IoU; "clear" leaves out the labels marked ambiguous. "hint" rows
  give the detector the caption's panel count (the caption names a complete run A..K).
- synthetic: held-out compound figures generated with another seed (`--seed`, default 1; training
  uses 0) from the single-panel images of the archive's *eval* articles (20% by a salted hash of the
  article id, none of which training draws from). Without `--archive`, the demo archive is built in
  a temporary folder (offline, ~30 s).
- captions: exact match of the caption splitter on 111 hand-split real captions (lead and every
  panel's text), all and clear.
- speed: figures/s on one core (torch and BLAS pinned to one thread) over the decoded figures,
  decode excluded; with `--device cuda` the model's figures/s on the GPU, batched.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy/torch load
    os.environ.setdefault(_var, "1")

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "subfigures"
FIXTURES = REPO.parent / "shared" / "fixtures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, help="model detector weights (curate train-subfigure-detector)")
    parser.add_argument("--device", default="cpu", help="model detector device (cpu, cuda)")
    parser.add_argument("--archive", type=Path, help="archive whose eval articles give the synthetic pool")
    parser.add_argument("--synthetic", type=int, default=200, help="held-out synthetic figures (0: none)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed of the synthetic set")
    parser.add_argument("--ocr", action="store_true", help="also the caption + OCR letters rows (needs biomedica[ocr])")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from biomedica.curate.subfigures.evaluate import SubfigureEvalConfig, markdown_table, run_evaluation

    with tempfile.TemporaryDirectory() as tmp:
        archive = args.archive
        if archive is None and args.synthetic:
            import contextlib
            import io

            from biomedica.cli.demo import run_demo

            with contextlib.redirect_stdout(io.StringIO()):  # the demo's own report is not part of this table
                archive = run_demo(Path(tmp) / "demo").archive
        config = SubfigureEvalConfig(labels=args.labels, fixtures=args.fixtures, weights=args.weights,
                                     device=args.device, archive=archive, synthetic=args.synthetic, seed=args.seed,
                                     threads=1, ocr=args.ocr)
        print(markdown_table(run_evaluation(config)))


if __name__ == "__main__":
    main()
