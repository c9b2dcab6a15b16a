"""Train the household forecasters of a data set: ``wattshare train-forecasters``.

Read top to bottom, :func:`train_forecasters` is the whole procedure:

1. split the days: the env's test days (last 7 of each month) are never touched; the last
   ``validation_days_per_month`` train days of each month are held out for early stopping;
2. scale each home's load and PV by statistics of its train days, build the per-interval features;
3. for each home (``per_home``), or once for all homes (``shared``): Adam on minibatches of
   windows, L1 loss on the scaled next 6 intervals of load and PV, one validation pass per epoch,
   keep the best weights, stop after ``patience`` epochs without improvement.

Per-home models are independent, so they train in ``workers`` processes at once (one torch thread
each: these models are too small for intra-op threads to pay, and two threads slow to a crawl
when another process holds a core). Every model is seeded from ``(seed, home)``, so the weights do
not depend on the number of workers, and two runs on CPU give identical weights.

The command line (``wattshare train-forecasters`` / ``evaluate-forecasters``) is
:mod:`train.forecasters_cli`; :func:`forecast_report` is the table both print.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import queue
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from energy_env.data import DataError, Dataset
from forecasting import data as fdata
from forecasting.evaluate import evaluate, format_target, target_check
from forecasting.metrics import format_table
from forecasting.model import ForecasterConfig, LSTMForecaster, TrainedForecasters

EVAL_CHUNK = 4096  # windows per no-grad forward pass


@dataclass
class TrainingJob:
    """One model to train: its data (only its homes' columns), origins and seed.

    ``cfg.max_epochs`` epochs at most. ``init_state`` starts from given weights (a federated
    round, or fine-tuning a global model) instead of a fresh seeded model. ``keep_best`` (default)
    returns the weights of the best validation epoch and stops after ``cfg.patience`` epochs
    without improvement; without it every epoch runs and the last weights are returned (a FedAvg
    client's local epochs).
    """

    cfg: ForecasterConfig
    padded: np.ndarray  # (T + W - 1, n, F) features, history-padded
    targets: np.ndarray  # (T, n, 2) scaled load and PV
    fit_origins: np.ndarray
    val_origins: np.ndarray
    num_homes: int  # embedding rows: n for the shared model, 0 for a per-home or pooled model
    seed: tuple[int, ...]
    init_state: dict | None = None
    keep_best: bool = True


def _loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    err = pred - target
    return err.abs().mean() if kind == "l1" else (err * err).mean()


def _batch(job: TrainingJob, origins: np.ndarray, homes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows ``(B, W, F)``, targets ``(B, H, 2)`` and home indices ``(B,)`` of (origin, home) pairs.

    Origin ``t``'s window is rows ``t .. t+W-1`` of ``padded`` (data rows ``t-W+1 .. t``); its
    targets are rows ``t+1 .. t+H`` of ``targets``.
    """
    cfg = job.cfg
    x = job.padded[origins[:, None] + np.arange(cfg.window), homes[:, None]]
    y = job.targets[origins[:, None] + np.arange(1, cfg.horizon + 1), homes[:, None]]
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(homes.astype(np.int64))


def _pairs(origins: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (origin, home) combination as two flat arrays."""
    return np.repeat(origins, n), np.tile(np.arange(n), len(origins))


def _validation_loss(model: LSTMForecaster, job: TrainingJob, pairs: tuple[np.ndarray, np.ndarray]) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for lo in range(0, len(pairs[0]), EVAL_CHUNK):
            x, y, h = _batch(job, pairs[0][lo : lo + EVAL_CHUNK], pairs[1][lo : lo + EVAL_CHUNK])
            total += _loss(model(x, h if job.num_homes else None), y, job.cfg.loss).item() * len(x)
    return total / len(pairs[0])


def train_job(job: TrainingJob, ticks=None) -> tuple[dict, dict]:
    """Train one model (see :class:`TrainingJob`); returns ``(state_dict, history)``.

    Runs inline or in a worker process; ``ticks`` (a queue, optional) receives one item per epoch
    for the progress bar.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_loop(job, ticks)
    finally:
        torch.set_num_threads(threads)  # inline, the caller's setting comes back


def _train_loop(job: TrainingJob, ticks) -> tuple[dict, dict]:
    cfg = job.cfg
    seq = np.random.SeedSequence(job.seed)
    torch.manual_seed(int(seq.generate_state(1)[0]))
    rng = np.random.default_rng(seq)
    model = LSTMForecaster(cfg, num_homes=job.num_homes)
    if job.init_state is not None:
        model.load_state_dict(job.init_state)
    n = job.padded.shape[1]
    fit, val = _pairs(job.fit_origins, n), _pairs(job.val_origins, n)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    best = {"loss": float("inf"), "state": copy.deepcopy(model.state_dict()), "epoch": 0}
    if job.init_state is not None and job.keep_best:  # fine-tuning must beat where it started
        best["loss"] = _validation_loss(model, job, val)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    epoch, stale = 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = rng.permutation(len(fit[0]))
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            x, y, h = _batch(job, fit[0][idx], fit[1][idx])
            opt.zero_grad(set_to_none=True)
            _loss(model(x, h if job.num_homes else None), y, cfg.loss).backward()
            opt.step()
        val_loss = _validation_loss(model, job, val)
        if ticks is not None:
            ticks.put(val_loss)
        if not job.keep_best:
            best = {"loss": val_loss, "state": model.state_dict(), "epoch": epoch}
        elif val_loss < best["loss"] - 1e-6:
            best = {"loss": val_loss, "state": copy.deepcopy(model.state_dict()), "epoch": epoch}
            stale = 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    history = {
        "epochs": epoch,
        "best_epoch": best["epoch"],
        "best_val_loss": best["loss"],
        "wall_seconds": time.perf_counter() - wall0,
        "cpu_seconds": time.process_time() - cpu0,
        "fit_windows": len(fit[0]),
    }
    return best["state"], history


def train_forecasters(
    dataset: Dataset, cfg: ForecasterConfig = ForecasterConfig(), workers: int | None = None, progress: bool = True
) -> TrainedForecasters:
    """Train the forecasters of every home of ``dataset`` on its train days (see the module doc).

    Args:
        dataset: the homes; its test days are never used.
        cfg: model shape and training settings.
        workers: processes training per-home models at once (default: the CPU count, at most 2
            and at most the number of homes); 1 trains inline. The shared model always trains inline.
        progress: show a progress bar (one tick per epoch of any model).
    """
    # 1. Days: fit / validation / test. Training windows and targets never touch a test day.
    labels = fdata.day_labels(dataset, cfg.validation_days_per_month)
    fit_origins = fdata.origins_for(labels, fdata.FIT, cfg.window, cfg.horizon, strict_inputs=True)
    val_origins = fdata.origins_for(labels, fdata.VALIDATION, cfg.window, cfg.horizon, strict_inputs=True)
    if len(fit_origins) == 0 or len(val_origins) == 0:
        raise DataError(
            f"{dataset.name}: too few train days for the forecasters ({len(fit_origins)} training and "
            f"{len(val_origins)} validation windows of {cfg.window} + {cfg.horizon} intervals)"
        )

    # 2. Per-home scaling from the train days only (fit + validation), then features and targets.
    scaling = fdata.fit_scaling(dataset, np.flatnonzero(labels != fdata.TEST))
    padded = fdata.pad_history(fdata.build_features(dataset, scaling, cfg.weather), cfg.window)
    targets = fdata.build_targets(dataset, scaling)

    # 3. One job per home (each sees only its own columns), or one job for the shared model.
    n = dataset.num_households
    if cfg.kind == "per_home":
        jobs = [
            TrainingJob(cfg, padded[:, [i]], targets[:, [i]], fit_origins, val_origins, 0, (cfg.seed, i)) for i in range(n)
        ]
    else:
        jobs = [TrainingJob(cfg, padded, targets, fit_origins, val_origins, n, (cfg.seed,))]
    workers = min(workers or min(os.cpu_count() or 1, 2), len(jobs))
    results = run_jobs(jobs, workers, progress, desc=f"train {cfg.kind} LSTM, {n} homes")

    # 4. Load the best weights of each model.
    models = []
    for job, (state, _) in zip(jobs, results):
        model = LSTMForecaster(cfg, num_homes=job.num_homes)
        model.load_state_dict(state)
        models.append(model.eval())
    history = [h for _, h in results]
    return TrainedForecasters(cfg, tuple(dataset.household_ids), scaling, models, history, dataset.name)


_WORKER_TICKS = None  # in a worker process: the queue its epochs are reported to


def _set_worker_ticks(ticks) -> None:
    global _WORKER_TICKS
    _WORKER_TICKS = ticks


def _train_in_worker(job: TrainingJob) -> tuple[dict, dict]:
    return train_job(job, _WORKER_TICKS)


class _BarTicks:
    """Ticks the progress bar once per epoch of an inline job (a worker sends to a queue instead)."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def put(self, val_loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(val_loss=f"{val_loss:.4f}")


def run_jobs(jobs: list[TrainingJob], workers: int, progress: bool, desc: str) -> list[tuple[dict, dict]]:
    """Train every job, inline or in ``workers`` spawned processes, ticking one bar per epoch.

    Returns ``(state_dict, history)`` per job, in order.
    """
    total = sum(j.cfg.max_epochs for j in jobs)  # planned epochs: an early stop jumps the bar ahead
    with tqdm(total=total, desc=desc, disable=not progress, unit="epoch") as bar:
        ticks = _BarTicks(bar)
        if workers <= 1:
            results = []
            for job in jobs:
                results.append(train_job(job, ticks))
                bar.update(job.cfg.max_epochs - results[-1][1]["epochs"])
            return results
        # spawn, not fork: forking a process that has started torch's thread pools can deadlock.
        ctx = mp.get_context("spawn")
        worker_ticks = ctx.Queue()
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_set_worker_ticks, initargs=(worker_ticks,)) as pool:
            futures = [pool.submit(_train_in_worker, job) for job in jobs]
            pending = set(range(len(jobs)))
            while pending:
                try:
                    ticks.put(worker_ticks.get(timeout=0.2))
                except queue.Empty:
                    pass
                for i in [i for i in pending if futures[i].done()]:
                    pending.discard(i)
                    bar.update(jobs[i].cfg.max_epochs - futures[i].result()[1]["epochs"])
            while True:  # ticks still in flight when their job was seen done
                try:
                    ticks.put(worker_ticks.get(timeout=0.05))
                except queue.Empty:
                    break
            return [f.result() for f in futures]


def forecast_report(dataset: Dataset, trained: dict[str, TrainedForecasters], out_dir: Path | None) -> str:
    """Score ``trained`` beside the baselines; write ``metrics.csv`` to ``out_dir``; return the text report."""
    table = evaluate(dataset, trained)
    lines = [f"{dataset.name}: {dataset.num_households} homes, test days only", format_table(table)]
    per_home = table[(table["step"] == "all") & (table["household"] != "all")]
    lines += ["load_mape_pct per household:", per_home.pivot(index="household", columns="model", values="load_mape_pct")
              .loc[list(dataset.household_ids)].to_string(float_format=lambda v: f"{v:.2f}"), ""]
    lines += [format_target(target_check(table, name)) for name in trained]
    text = "\n".join(lines)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_dir / "metrics.csv", index=False)
        (out_dir / "metrics.txt").write_text(text + "\n")
    return text
