"""What OpenCLIP's loop does not record: per-step loss, lr, samples/s, data-wait fraction, eval hook.

`open_clip_train.main.main` is a closed loop, so two of its module-level names are wrapped
for the duration of one run (`patched_openclip`), both restored afterwards:

- `create_loss`: the loss it returns also hands each micro-batch loss to the monitor;
- `train_one_epoch`: the train dataloader is timed (time spent waiting in `next()` versus
  the whole step), and after each epoch (= checkpoint interval) the eval hook runs.

Rank 0 appends one JSON line per logged step to `<run>/metrics.jsonl` (`step`, `epoch`,
`loss`, `lr`, `samples_per_s`, `data_wait_fraction`, `step_time_s`) and the same scalars
to TensorBoard under `train/`. Losses stay on the device until a log step, so recording
adds no per-step host sync.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRICS_NAME = "metrics.jsonl"

EvalHook = Callable[[Any, Any, int, int], dict]  # (model, args, epoch completed, step) -> result row, {} if none


@dataclass
class _Step:
    index: int
    epoch: int
    started: float
    wait_s: float = 0.0
    losses: list = field(default_factory=list)


class StepMonitor:
    """Collects timings and losses per optimiser step and writes them every `log_every` steps."""

    def __init__(self, metrics_path: Path, log_every: int, eval_hook: EvalHook | None = None) -> None:
        self.metrics_path = Path(metrics_path)
        self.log_every = log_every
        self.eval_hook = eval_hook
        self.rows_written = 0
        self._args: Any = None
        self._optimizer: Any = None
        self._writer: Any = None
        self._epoch = 0
        self._steps_per_epoch = 1
        self._batch_in_epoch = 0
        self._step: _Step | None = None
        self._window: list[tuple[_Step, float, float]] = []  # (step, step time, lr)

    # --- hooks called from inside OpenCLIP's loop -------------------------------------------
    def record_loss(self, value: Any) -> None:
        if self._step is not None:
            self._step.losses.append(value.detach() if hasattr(value, "detach") else value)

    def timed(self, loader: Any) -> Iterator:
        """Iterate `loader`, timing each wait; a step spans from its first batch request to the next step's."""
        iterator = iter(loader)
        while True:
            requested = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self._close_step(requested)
                return
            received = time.perf_counter()
            accum = max(1, getattr(self._args, "accum_freq", 1))
            if self._batch_in_epoch % accum == 0:
                self._close_step(requested)
                index = self._epoch * self._steps_per_epoch + self._batch_in_epoch // accum
                self._step = _Step(index=index, epoch=self._epoch, started=requested)
            self._step.wait_s += received - requested
            self._batch_in_epoch += 1
            yield batch

    def _close_step(self, now: float) -> None:
        step = self._step
        if step is None:
            return
        self._step = None
        lr = self._optimizer.param_groups[0]["lr"] if self._optimizer is not None else float("nan")
        self._window.append((step, now - step.started, lr))
        if (step.index + 1) % self.log_every == 0 or step.index % self._steps_per_epoch == self._steps_per_epoch - 1:
            self.flush()

    def flush(self) -> None:
        """Turn the window's losses into numbers (one host sync) and write its rows (rank 0)."""
        window, self._window = self._window, []
        if not window or not self._is_master():
            return
        args = self._args
        global_batch = args.batch_size * args.accum_freq * args.world_size
        rows = []
        for step, seconds, lr in window:
            loss = float(sum(float(v) for v in step.losses) / len(step.losses)) if step.losses else math.nan
            rows.append({
                "step": step.index,
                "epoch": step.epoch,
                "loss": loss,
                "lr": lr,
                "step_time_s": seconds,
                "data_wait_s": step.wait_s,
                "data_wait_fraction": step.wait_s / seconds if seconds > 0 else 0.0,
                "samples_per_s": global_batch / seconds if seconds > 0 else 0.0,
            })
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        self.rows_written += len(rows)
        if self._writer is not None:
            total_time = sum(r["step_time_s"] for r in rows)
            last = rows[-1]["step"]
            self._writer.add_scalar("train/data_wait_fraction", sum(r["data_wait_s"] for r in rows) / total_time, last)
            self._writer.add_scalar("train/samples_per_s_window", global_batch * len(rows) / total_time, last)
            self._writer.add_scalar("train/loss_window", sum(r["loss"] for r in rows) / len(rows), last)

    def _is_master(self) -> bool:
        return self._args is None or getattr(self._args, "rank", 0) == 0

    # --- wrappers installed into open_clip_train.main ------------------------------------------
    def wrap_create_loss(self, create_loss: Callable) -> Callable:
        monitor = self

        def create_recorded_loss(args):
            loss = create_loss(args)
            original_forward = loss.forward

            def forward(*inputs, **kwargs):
                result = original_forward(*inputs, **kwargs)
                total = sum(result.values()) if isinstance(result, dict) else result
                if isinstance(total, (tuple, list)):
                    total = sum(total)
                monitor.record_loss(total)
                return result

            loss.forward = forward
            return loss

        return create_recorded_loss

    def wrap_train_one_epoch(self, train_one_epoch: Callable) -> Callable:
        monitor = self

        def train_one_epoch_monitored(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, tb_writer=None):
            monitor._args, monitor._optimizer, monitor._writer = args, optimizer, tb_writer
            monitor._epoch, monitor._batch_in_epoch = epoch, 0
            info = data["train"]
            monitor._steps_per_epoch = max(1, info.dataloader.num_batches // args.accum_freq)
            original = info.dataloader
            info.dataloader = _TimedLoader(original, monitor)
            try:
                result = train_one_epoch(model, data, loss, epoch, optimizer, scaler, scheduler, dist_model, args, tb_writer=tb_writer)
            finally:
                info.dataloader = original
            monitor.flush()
            completed = epoch + 1
            if monitor.eval_hook is not None and monitor._is_master():
                monitor.eval_hook(model, args, completed, completed * monitor._steps_per_epoch)
            return result

        return train_one_epoch_monitored


class _TimedLoader:
    """The train dataloader seen through StepMonitor.timed; other attributes pass through."""

    def __init__(self, loader: Any, monitor: StepMonitor) -> None:
        self._loader = loader
        self._monitor = monitor

    def __iter__(self) -> Iterator:
        return self._monitor.timed(self._loader)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


@contextmanager
def patched_openclip(monitor: StepMonitor):
    """Install the monitor's wrappers into `open_clip_train.main` for one run, and restore them."""
    import logging

    import open_clip_train.main as openclip_main

    saved = (openclip_main.train_one_epoch, openclip_main.create_loss)
    handlers = list(logging.root.handlers)
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    root_level = logging.root.level
    openclip_main.train_one_epoch = monitor.wrap_train_one_epoch(saved[0])
    openclip_main.create_loss = monitor.wrap_create_loss(saved[1])
    try:
        yield openclip_main
    finally:
        openclip_main.train_one_epoch, openclip_main.create_loss = saved
        # OpenCLIP adds a console and a file handler on every call; drop them so a second run
        # in the same process does not log into the first run's file
        for handler in list(logging.root.handlers):
            if handler not in handlers:
                logging.root.removeHandler(handler)
                handler.close()
        # and it sets every logger (torch's included) to INFO; put them back
        logging.root.setLevel(root_level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of `<run_dir>/metrics.jsonl` (empty when the run logged none yet)."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
