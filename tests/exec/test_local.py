"""The executor API with a toy unit function: a real spawn pool, context once per process, errors naming the unit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biomedica.exec import EXECUTORS, ExecutorError, run_units
from biomedica.exec.job_array import ArrayTask, share_key

REPO = Path(__file__).resolve().parents[2]

# Worker processes import this module by name to unpickle `square` and `CountingContext`.
_UNPICKLED: list[int] = []


class CountingContext:
    """Heavy shared state stand-in that counts how often this process unpickled it."""

    def __init__(self, offset: int, marks: Path | None = None):
        self.offset = offset
        self.marks = marks

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        _UNPICKLED.append(os.getpid())


def square(unit: int, context: CountingContext) -> tuple[int, int, int]:
    if unit < 0:
        raise ValueError(f"negative unit {unit}")
    return unit * unit + context.offset, os.getpid(), len(_UNPICKLED)


def slow_or_failing(unit: int, context: CountingContext) -> int:
    if unit == 0:
        raise RuntimeError("unit zero is broken")
    time.sleep(0.2)
    (context.marks / str(unit)).touch()
    return unit


@pytest.fixture
def importable_tests(monkeypatch):
    """Spawned workers copy sys.path; put the repository on it so they can import this module."""
    monkeypatch.syspath_prepend(str(REPO))


def test_process_pool_sends_the_context_once_per_worker_and_returns_every_result(importable_tests):
    units = list(range(12))
    results = dict(run_units(square, units, workers=2, context=CountingContext(offset=1)))
    assert sorted(results) == units
    assert all(value == unit * unit + 1 for unit, (value, _, _) in results.items())
    pids = {pid for _, pid, _ in results.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {unpickled for _, _, unpickled in results.values()} == {1}  # not once per unit


def test_one_worker_runs_inline_in_this_process():
    results = dict(run_units(square, [2, 3], workers=1, context=CountingContext(offset=0)))
    assert {unit: (value, pid) for unit, (value, pid, _) in results.items()} == {
        2: (4, os.getpid()),
        3: (9, os.getpid()),
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exception_keeps_its_type_and_names_the_unit(importable_tests, workers):
    with pytest.raises(ValueError, match="negative unit -3") as info:
        list(run_units(square, [1, -3, 2], workers=workers, context=CountingContext(offset=0)))
    assert "raised while running work unit -3" in info.value.__notes__


def test_a_failing_unit_cancels_the_units_still_waiting(importable_tests, tmp_path):
    units = list(range(40))
    with pytest.raises(RuntimeError, match="unit zero is broken"):
        for _ in run_units(slow_or_failing, units, workers=2, context=CountingContext(0, marks=tmp_path)):
            pass
    assert len(list(tmp_path.iterdir())) < len(units) - 1


def test_progress_bar_counts_units(capsys):
    done = list(run_units(square, [1, 2, 3], context=CountingContext(offset=0), progress="toy"))
    assert len(done) == 3
    err = capsys.readouterr().err
    assert "toy" in err and "3/3" in err


def test_unknown_executor_is_one_line_naming_the_choices_before_anything_runs():
    assert EXECUTORS == ("local", "ray", "array")
    with pytest.raises(ExecutorError, match=r"^unknown executor 'slurm'; available: array, local, ray$"):
        run_units(square, [1], executor="slurm")


def test_array_task_runs_its_deterministic_share(monkeypatch):
    names = [f"shard-{i:05d}" for i in range(50)]
    shares = [{n for n in names if ArrayTask(i, 3).owns(n)} for i in range(3)]
    assert set().union(*shares) == set(names) and sum(map(len, shares)) == len(names)
    assert all(shares) and share_key(names[7]) == share_key(f"shard-{7:05d}")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    ran = [unit for unit, _ in run_units(_length, names, executor="array")]
    assert ran == sorted(shares[2])


def _length(unit: str, context: None) -> int:
    return len(unit)


def test_ray_missing_is_one_line_naming_the_extra():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from biomedica.exec import run_units\n"
        "try:\n    run_units(len, [1], executor='ray')\n"
        "except ValueError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        done.stdout.strip() == "the ray executor needs Ray: pip install 'biomedica[ray]' (or choose --executor local)"
    )
