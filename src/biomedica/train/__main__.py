"""`python -m biomedica.train CONFIG.yaml`: one training process (what torchrun starts per rank).

It evaluates nothing: a config with `eval.tasks` is refused (exit 2); run it with
`biomedica train run CONFIG` (per torchrun rank: `python -m biomedica.cli train run CONFIG`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from biomedica.train.config import ConfigError, load_config
from biomedica.train.openclip_args import PlanError
from biomedica.train.run import TrainingError, run_training
from biomedica.train.sources import SourceError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m biomedica.train CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        result = run_training(load_config(Path(argv[0])))
    except (ConfigError, SourceError, PlanError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done: {len(result.checkpoints)} checkpoint(s) in {result.run_dir / 'checkpoints'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
