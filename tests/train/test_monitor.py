import math
import time
from types import SimpleNamespace

from biomedica.train.monitor import StepMonitor, read_metrics


class _Optimizer:
    param_groups = [{"lr": 0.5}]


class _SlowLoader:
    """Batches that take `wait` seconds to arrive; `num_batches` like OpenCLIP's loader."""

    def __init__(self, batches, wait):
        self.num_batches, self.wait = batches, wait

    def __iter__(self):
        for index in range(self.num_batches):
            time.sleep(self.wait)
            yield index


def _run_epoch(monitor, epoch, loader, compute_s, losses):
    args = SimpleNamespace(accum_freq=2, batch_size=4, world_size=1, rank=0, epochs=2)

    def train_one_epoch(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, tb_writer=None):
        for i, _ in enumerate(data["train"].dataloader):
            time.sleep(compute_s)
            monitor.record_loss(losses[i])

    wrapped = monitor.wrap_train_one_epoch(train_one_epoch)
    data = {"train": SimpleNamespace(dataloader=loader)}
    wrapped(None, data, None, epoch, _Optimizer(), None, None, None, args)
    assert data["train"].dataloader is loader  # restored


def test_steps_group_accumulated_batches_and_time_the_waits(tmp_path):
    hook_calls = []
    monitor = StepMonitor(tmp_path / "metrics.jsonl", log_every=2, eval_hook=lambda *a: hook_calls.append(a[2:]))
    _run_epoch(monitor, 0, _SlowLoader(4, wait=0.03), compute_s=0.01, losses=[4.0, 2.0, 1.0, 3.0])
    _run_epoch(monitor, 1, _SlowLoader(4, wait=0.0), compute_s=0.05, losses=[1.0] * 4)  # long enough that scheduler jitter on a loaded machine stays far below the 0.3 bound
    rows = read_metrics(tmp_path)
    assert [(r["step"], r["epoch"]) for r in rows] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    assert [r["loss"] for r in rows] == [3.0, 2.0, 1.0, 1.0]  # mean of the two micro-batches
    assert all(r["lr"] == 0.5 for r in rows)
    first = rows[0]
    assert 0.06 <= first["data_wait_s"] < first["step_time_s"]
    assert 0.6 < first["data_wait_fraction"] < 0.95
    assert math.isclose(first["samples_per_s"], 8 / first["step_time_s"])
    assert rows[2]["data_wait_fraction"] < 0.3
    assert hook_calls == [(1, 2), (2, 4)]  # (completed epoch, step) after each checkpoint interval


def test_other_ranks_write_nothing(tmp_path):
    monitor = StepMonitor(tmp_path / "metrics.jsonl", log_every=1)
    monitor._args = SimpleNamespace(rank=1)
    monitor._window = [(object(), 1.0, 0.1)]
    monitor.flush()
    assert not (tmp_path / "metrics.jsonl").exists()
