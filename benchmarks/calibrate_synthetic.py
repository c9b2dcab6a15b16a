"""Side-by-side calibration table: the synthetic community vs the measured CityLearn 2022 homes.

    .venv/bin/python benchmarks/calibrate_synthetic.py [--households 50] [--seed 0] [--seeds 1]
        [--year 2025] [--citylearn PATH]

The real side is the 14 plausible Fontana homes (the loader drops Buildings 12, 14 and 15), read
with ``load_citylearn``; it is skipped with a message if the folder is absent. Both sides are
compared at hourly resolution (the synthetic 30-minute data summed in pairs) and by calendar month
(the real year runs Aug 2016 - Jul 2017). ``--seeds K`` averages every synthetic statistic over
seeds ``seed .. seed+K-1`` (weather years differ by seed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_env.data import DataError, Dataset, generate_synthetic, load_citylearn  # noqa: E402

DEFAULT_CITYLEARN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "citylearn_2022"
SUMMER, WINTER, SHOULDER = (6, 7, 8), (12, 1, 2), (4, 10)


def _hourly(ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hourly load and PV (kWh/h), and the month, clock hour and weekend flag of each hour."""
    load = ds.load_kwh.reshape(-1, 2, ds.num_households).sum(axis=1)
    pv = ds.pv_kwh.reshape(-1, 2, ds.num_households).sum(axis=1)
    ts = ds.timestamps[::2]
    return load, pv, ts.month.to_numpy(), ts.hour.to_numpy(), ts.day_of_week.to_numpy() >= 5


def _profile(load: np.ndarray, hour: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean 24-hour shape (mean 1) of homes normalised by their own mean load."""
    norm = load / load.mean(axis=0)
    prof = np.array([norm[mask & (hour == h)].mean() for h in range(24)])
    return prof / prof.mean()


def community_stats(ds: Dataset) -> dict:
    load, pv, month, hour, weekend = _hourly(ds)
    hours_per_year = 8760.0 / len(load)
    annual = load.sum(axis=0) * hours_per_year
    has_pv = ds.pv_capacity_kw > 0
    pv_per_kw = pv[:, has_pv] / ds.pv_capacity_kw[has_pv]
    pv_yield = pv_per_kw.sum(axis=0) * hours_per_year
    daily = lambda x, months: x[np.isin(month, months)].mean() * 24  # noqa: E731
    everything = np.ones(len(load), bool)
    profiles = {
        "all": _profile(load, hour, everything),
        "summer": _profile(load, hour, np.isin(month, SUMMER)),
        "winter": _profile(load, hour, np.isin(month, WINTER)),
        "weekday": _profile(load, hour, ~weekend),
        "weekend": _profile(load, hour, weekend),
    }
    home_prof = np.stack([_profile(load[:, [i]], hour, everything) for i in range(load.shape[1])])
    monthly_pv = np.array([pv_per_kw[month == m].sum(axis=0).mean() for m in range(1, 13)])
    return {
        "homes": ds.num_households,
        "annual_min": annual.min(),
        "annual_mean": annual.mean(),
        "annual_max": annual.max(),
        "annual_sd": annual.std(ddof=1) if len(annual) > 1 else 0.0,
        "peak_min": load.max(axis=0).min(),
        "peak_mean": load.max(axis=0).mean(),
        "peak_max": load.max(axis=0).max(),
        "p99_mean": np.percentile(load, 99, axis=0).mean(),
        "p5_mean": np.percentile(load, 5, axis=0).mean(),
        "yield_min": pv_yield.min(),
        "yield_mean": pv_yield.mean(),
        "yield_max": pv_yield.max(),
        "pv_peak": pv_per_kw.max(axis=0).mean(),
        "load_summer_winter": daily(load.mean(axis=1), SUMMER) / daily(load.mean(axis=1), WINTER),
        "load_summer_shoulder": daily(load.mean(axis=1), SUMMER) / daily(load.mean(axis=1), SHOULDER),
        "load_winter_shoulder": daily(load.mean(axis=1), WINTER) / daily(load.mean(axis=1), SHOULDER),
        "pv_summer_winter": daily(pv_per_kw.mean(axis=1), SUMMER) / daily(pv_per_kw.mean(axis=1), WINTER),
        "weekend_weekday": load[weekend].mean() / load[~weekend].mean(),
        "evening_midday": profiles["all"][17:21].mean() / profiles["all"][11:15].mean(),
        "home_vs_community_corr": np.mean([np.corrcoef(p, profiles["all"])[0, 1] for p in home_prof]),
        "profiles": profiles,
        "monthly_daily_load": np.array([daily(load.mean(axis=1), (m,)) for m in range(1, 13)]),
        "monthly_pv": monthly_pv,
        "temp_jan_jul": (
            (ds.temperature_c[np.isin(ds.timestamps.month, (1,))].mean(), ds.temperature_c[np.isin(ds.timestamps.month, (7,))].mean())
            if ds.temperature_c is not None else (np.nan, np.nan)
        ),
    }


def _average(runs: list[dict]) -> dict:
    """Element-wise mean of community_stats results."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = {k: np.mean([r[key][k] for r in runs], axis=0) for k in value}
        else:
            out[key] = np.mean([r[key] for r in runs], axis=0)
    return out


ROWS = [
    ("homes", "homes", "{:.0f}"),
    ("annual load min, kWh", "annual_min", "{:,.0f}"),
    ("annual load mean, kWh", "annual_mean", "{:,.0f}"),
    ("annual load max, kWh", "annual_max", "{:,.0f}"),
    ("annual load s.d., kWh", "annual_sd", "{:,.0f}"),
    ("peak hourly load min, kWh/h", "peak_min", "{:.2f}"),
    ("peak hourly load mean, kWh/h", "peak_mean", "{:.2f}"),
    ("peak hourly load max, kWh/h", "peak_max", "{:.2f}"),
    ("p99 hourly load (mean), kWh/h", "p99_mean", "{:.2f}"),
    ("p5 hourly load (mean), kWh/h", "p5_mean", "{:.2f}"),
    ("PV yield min, kWh/kW/yr", "yield_min", "{:,.0f}"),
    ("PV yield mean, kWh/kW/yr", "yield_mean", "{:,.0f}"),
    ("PV yield max, kWh/kW/yr", "yield_max", "{:,.0f}"),
    ("PV peak hourly, kW/kW (mean)", "pv_peak", "{:.2f}"),
    ("PV summer/winter (JJA/DJF)", "pv_summer_winter", "{:.2f}"),
    ("load summer/winter (JJA/DJF)", "load_summer_winter", "{:.2f}"),
    ("load summer/shoulder (JJA/Apr+Oct)", "load_summer_shoulder", "{:.2f}"),
    ("load winter/shoulder (DJF/Apr+Oct)", "load_winter_shoulder", "{:.2f}"),
    ("load weekend/weekday", "weekend_weekday", "{:.2f}"),
    ("load evening(17-21)/midday(11-15)", "evening_midday", "{:.2f}"),
    ("home-vs-community profile corr", "home_vs_community_corr", "{:.2f}"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="average the synthetic side over this many seeds")
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--citylearn", type=Path, default=DEFAULT_CITYLEARN)
    ap.add_argument("--config", default=None, help="a run YAML: compare against its homes (your own data) instead of CityLearn")
    args = ap.parse_args(argv)

    runs, elapsed = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        t0 = time.perf_counter()
        syn_ds = generate_synthetic(args.households, args.year, seed)
        elapsed.append(time.perf_counter() - t0)
        runs.append(community_stats(syn_ds))
    syn = _average(runs)
    seeds = f"seed {args.seed}" if args.seeds == 1 else f"mean of seeds {args.seed}..{args.seed + args.seeds - 1}"
    print(f"synthetic: {args.households} homes, year {args.year}, {seeds}; generated in {np.mean(elapsed):.2f} s each")
    real = None
    try:
        if args.config:
            from energy_env.data import load_dataset
            from train.run_config import load_run_config

            env = load_run_config(args.config).env
            real_ds = load_dataset(env.data, env.households_to_load, env.seed, env.database)
        else:
            real_ds = load_citylearn(args.citylearn)
        real = community_stats(real_ds)
        dropped = ", ".join(sorted(real_ds.flags, key=lambda s: int(s.split("_")[1]) if s.split("_")[-1].isdigit() else 0))
        print(f"real:      {real_ds.name} ({real_ds.num_households} homes; flagged and dropped: {dropped or 'none'})")
    except DataError as err:
        print(f"real:      skipped ({err})")
    print()
    print(f"{'statistic':<38}{'synthetic':>12}{'real':>12}")
    for label, key, fmt in ROWS:
        r = fmt.format(real[key]) if real else "-"
        print(f"{label:<38}{fmt.format(syn[key]):>12}{r:>12}")
    if real:
        print()
        print("mean 24-hour load shape, correlation synthetic vs real (hour = clock hour starting h:00):")
        for k in ("all", "summer", "winter", "weekday", "weekend"):
            print(f"  {k:<8} {np.corrcoef(syn['profiles'][k], real['profiles'][k])[0, 1]:.3f}")
        print()
        print(f"{'month':<8}" + "".join(f"{m:>6}" for m in range(1, 13)))
        for label, key, fmt in (("load kWh/day syn", "monthly_daily_load", "{:6.1f}"),
                                ("load kWh/day real", "monthly_daily_load", "{:6.1f}"),
                                ("PV kWh/kW syn", "monthly_pv", "{:6.0f}"),
                                ("PV kWh/kW real", "monthly_pv", "{:6.0f}")):
            src = syn if "syn" in label else real
            print(f"{label:<18}" + "".join(fmt.format(v) for v in src[key]))
        print()
        print("all-year 24-hour load shape (mean 1):")
        print("  syn  " + " ".join(f"{v:.2f}" for v in syn["profiles"]["all"]))
        print("  real " + " ".join(f"{v:.2f}" for v in real["profiles"]["all"]))
        print("summer shape:")
        print("  syn  " + " ".join(f"{v:.2f}" for v in syn["profiles"]["summer"]))
        print("  real " + " ".join(f"{v:.2f}" for v in real["profiles"]["summer"]))
        print("winter shape:")
        print("  syn  " + " ".join(f"{v:.2f}" for v in syn["profiles"]["winter"]))
        print("  real " + " ".join(f"{v:.2f}" for v in real["profiles"]["winter"]))
        tj, tl = syn["temp_jan_jul"]
        rj, rl = real["temp_jan_jul"]
        print(f"\nmean temperature Jan/Jul, C: synthetic {tj:.1f}/{tl:.1f}; CityLearn weather.csv {rj:.1f}/{rl:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
