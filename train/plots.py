"""The benchmark's PNG plots: what a reader would rather look at than read."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from energy_env.community import Community  # noqa: E402
from energy_env.config import INTERVALS_PER_DAY  # noqa: E402

if TYPE_CHECKING:
    from train.benchmark import PolicyRun


MAX_HOMES_SHOWN = 30  # the per-home plots show the first homes of a larger community


def _featured(runs: dict[str, "PolicyRun"]) -> "PolicyRun | None":
    """The run the one-policy plots show: rule_based, mpc or oracle where run, else the first; None without rollouts."""
    rolled = {name: run for name, run in runs.items() if run.trajectory is not None}
    for name in ("rule_based", "mpc", "oracle"):
        if name in rolled:
            return rolled[name]
    return next(iter(rolled.values()), None)


def plot_home_day(run: "PolicyRun", community: Community, path: Path, home: int = 0, day: int = 0) -> None:
    """Load, PV, battery state, P2P trades and prices of one home over one day of the first week."""
    tr = run.trajectory
    sl = slice(day * INTERVALS_PER_DAY, (day + 1) * INTERVALS_PER_DAY)
    hours = np.arange(INTERVALS_PER_DAY) / 2
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax1.plot(hours, tr["load_kwh"][sl, 0, home], label="load")
    ax1.plot(hours, tr["pv_kwh"][sl, 0, home], label="PV")
    ax1.bar(hours, tr["battery_ac_kwh"][sl, 0, home], width=0.4, alpha=0.4, label="battery (+ charge)")
    ax1.set_ylabel("kWh per 30 min")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.plot(hours, tr["soc_kwh"][sl, 0, home], color="k", label="battery state")
    ax2b = ax2.twinx()
    ax2b.bar(hours, tr["p2p_sold_kwh"][sl, 0, home], width=0.4, color="g", alpha=0.5, label="P2P sold")
    ax2b.bar(hours, -tr["p2p_bought_kwh"][sl, 0, home], width=0.4, color="r", alpha=0.5, label="P2P bought")
    ax2.set_ylabel("stored kWh")
    ax2b.set_ylabel("P2P kWh")
    ax2b.legend(loc="upper right", fontsize=8)
    ax3.step(hours, tr["import_price_usd_per_kwh"][sl, 0], where="post", label="import (E-TOU-C)")
    ax3.step(hours, tr["export_price_usd_per_kwh"][sl, 0], where="post", label="export credit (NBT)")
    cleared = tr["market_cleared"][sl, 0]
    ax3.plot(hours[cleared], tr["market_price_usd_per_kwh"][sl, 0][cleared], "o", ms=3, label="P2P price")
    ax3.set_ylabel("$/kWh")
    ax3.set_xlabel("hour of day")
    ax3.legend(loc="upper left", fontsize=8)
    hid = community.dataset.household_ids[home]
    start = community.dataset.timestamps[int(tr["interval"][sl.start, 0])]
    fig.suptitle(f"{run.name}: {hid} on {start:%Y-%m-%d}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_community_import(runs: dict[str, "PolicyRun"], path: Path, week: int = 0) -> None:
    """The community's grid import over the first test week, per policy, against the baseline (runs with a rollout)."""
    fig, ax = plt.subplots(figsize=(11, 4))
    first = next(iter(runs.values())).trajectory
    hours = np.arange(first["load_kwh"].shape[0]) / 2
    baseline = np.maximum(first["load_kwh"][:, week] - first["pv_kwh"][:, week], 0).sum(axis=1)
    ax.plot(hours, baseline, color="0.6", lw=1, label="no battery, no P2P")
    for run in runs.values():
        if run.name == "pge_baseline":
            continue
        ax.plot(hours, run.trajectory["grid_import_kwh"][:, week].sum(axis=1), lw=1, label=run.name)
    ax.set_xlabel("hours into the test week")
    ax.set_ylabel("community grid import, kWh per 30 min")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_savings_per_household(runs: dict[str, "PolicyRun"], community: Community, path: Path) -> None:
    """Savings against plain PG&E pricing, per household and policy (percent of the baseline bill)."""
    names = [n for n in runs if n != "pge_baseline"]
    ids = community.dataset.household_ids[:MAX_HOMES_SHOWN]  # a readable plot: the first homes
    fig, ax = plt.subplots(figsize=(max(8, len(ids) * 0.6), 4))
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        pct = [h["costs"]["savings_percent"] for h in runs[name].document["households"][: len(ids)]]
        pct = [np.nan if p is None else p for p in pct]
        ax.bar(np.arange(len(ids)) + k * width, pct, width, label=name)
    ax.set_xticks(np.arange(len(ids)) + 0.4 - width / 2, ids, rotation=60, fontsize=7)
    ax.set_ylabel("saved vs PG&E baseline, %")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trading_heatmap(run: "PolicyRun", community: Community, path: Path, day: int = 0) -> None:
    """P2P energy sold (+) and bought (-) by household and interval over one day."""
    tr = run.trajectory
    sl = slice(day * INTERVALS_PER_DAY, (day + 1) * INTERVALS_PER_DAY)
    net = (tr["p2p_sold_kwh"][sl, 0, :MAX_HOMES_SHOWN] - tr["p2p_bought_kwh"][sl, 0, :MAX_HOMES_SHOWN]).T
    lim = max(float(np.abs(net).max()), 1e-6)
    fig, ax = plt.subplots(figsize=(10, max(3, 0.3 * net.shape[0])))
    im = ax.imshow(net, aspect="auto", cmap="RdBu", vmin=-lim, vmax=lim, extent=(0, 24, net.shape[0] - 0.5, -0.5))
    ax.set_yticks(range(net.shape[0]), community.dataset.household_ids[: net.shape[0]], fontsize=7)
    ax.set_xlabel("hour of day")
    fig.colorbar(im, ax=ax, label="P2P kWh: sold (+) / bought (-)")
    ax.set_title(f"{run.name}: trading activity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(runs: dict[str, "PolicyRun"], community: Community, out: Path) -> list[Path]:
    """The four plots into ``out``, from the finished runs; returns the paths written.

    The savings plot reads the results documents, so rows read back from files (``--resume``)
    appear in it; the other three need a rollout of this call. A plot with nothing to show is
    skipped (said on stderr); an older file of its name is left as it was.
    """
    done = {name: run for name, run in runs.items() if run.status == "ok"}
    rolled = {name: run for name, run in done.items() if run.trajectory is not None}
    featured = _featured(rolled)
    plots = [
        ("home_day.png", featured is not None, lambda p: plot_home_day(featured, community, p)),
        ("community_import.png", bool(rolled), lambda p: plot_community_import(rolled, p)),
        ("savings_per_household.png", bool(done), lambda p: plot_savings_per_household(done, community, p)),
        ("trading_heatmap.png", featured is not None, lambda p: plot_trading_heatmap(featured, community, p)),
    ]
    written = []
    for file, possible, draw in plots:
        path = out / file
        if possible:
            draw(path)
            written.append(path)
            continue
        why = "no finished policy" if file.startswith("savings") else "no finished policy rolled out in this call"
        print(f"benchmark: {file} skipped: {why}" + ("; the older file is left as it was" if path.exists() else ""), file=sys.stderr)
    return written
