"""Regenerate ``energy_env/tariff_data/*.csv`` from the shared PG&E tariff tables.

Input (default ``<repo>/../shared/data/pge_tariff``, see that folder's PROVENANCE.md section 3):

* ``pge_e_tou_c_rates_2025_2026.csv``: long layout, one row per (effective date, season, period).
* ``pge_nbt_export_values_2024_vintage.csv`` / ``..._2025_vintage.csv``: long layout, one row per
  (calendar year, month, day type, hour).

Output, in the package's own layout (documented in ``energy_env/tariff_data/SOURCES.md``):

* ``e_tou_c_rates.csv``: one row per effective date; total rates above baseline per season/period and the
  baseline credit, $/kWh.
* ``nbt_export_values.csv``: one row per (vintage, calendar year, month, day type); 24 columns
  ``h00..h23`` of total (generation + delivery) export credit, $/kWh.

The script checks the inputs (complete grids, no duplicates, totals equal components, within-baseline rate =
total - credit) and that every written value reads back to exactly the input value.

Usage::

    python benchmarks/build_tariff_data.py [--src DIR] [--out DIR] [--check]

``--check`` writes nothing and exits 1 if the committed files differ from what the script would write.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO.parent / "shared" / "data" / "pge_tariff"
DEFAULT_OUT = REPO / "energy_env" / "tariff_data"

ETOUC_SRC = "pge_e_tou_c_rates_2025_2026.csv"
NBT_SRC = {2024: "pge_nbt_export_values_2024_vintage.csv", 2025: "pge_nbt_export_values_2025_vintage.csv"}
ETOUC_OUT = "e_tou_c_rates.csv"
NBT_OUT = "nbt_export_values.csv"

RATE_COLUMNS = [
    "summer_peak_usd_per_kwh",
    "summer_off_peak_usd_per_kwh",
    "winter_peak_usd_per_kwh",
    "winter_off_peak_usd_per_kwh",
]
HOUR_COLUMNS = [f"h{h:02d}" for h in range(24)]
DAY_TYPES = ("Weekday", "Weekend")
DECIMALS = 5  # the sources publish 5 decimal places; the writer checks nothing is lost
TOL_USD_PER_KWH = 1.5e-5  # sums of 5-decimal components may differ from the published total by rounding


def build_e_tou_c(src: Path) -> pd.DataFrame:
    """Long (date, season, period) rows -> one wide row per effective date."""
    long = pd.read_csv(src / ETOUC_SRC, dtype={"effective_date": str, "advice_letter": str})
    components = (
        long["generation_usd_per_kwh"] + long["distribution_usd_per_kwh"] + long["other_components_usd_per_kwh"]
    )
    _require(
        np.allclose(components, long["total_rate_usd_per_kwh"], rtol=0, atol=TOL_USD_PER_KWH),
        "E-TOU-C components do not sum to the total rate",
    )
    within = long["total_rate_usd_per_kwh"] - long["baseline_credit_usd_per_kwh"]
    _require(
        np.allclose(within, long["rate_within_baseline_usd_per_kwh"], rtol=0, atol=TOL_USD_PER_KWH),
        "E-TOU-C within-baseline rate != total - baseline credit",
    )
    _require(not long.duplicated(["effective_date", "season", "period"]).any(), "duplicate E-TOU-C rows")

    rows = []
    for date, g in long.groupby("effective_date", sort=True):
        _require(g["advice_letter"].nunique() == 1, f"{date}: several advice letters")
        _require(g["baseline_credit_usd_per_kwh"].nunique() == 1, f"{date}: baseline credit varies by period")
        rate = {(r.season, r.period): r.total_rate_usd_per_kwh for r in g.itertuples()}
        _require(
            set(rate) == {(s, p) for s in ("summer", "winter") for p in ("peak", "off_peak")},
            f"{date}: expected the 4 season x period rates, got {sorted(rate)}",
        )
        rows.append(
            {
                "effective_date": date,
                "advice_letter": g["advice_letter"].iloc[0],
                "summer_peak_usd_per_kwh": rate["summer", "peak"],
                "summer_off_peak_usd_per_kwh": rate["summer", "off_peak"],
                "winter_peak_usd_per_kwh": rate["winter", "peak"],
                "winter_off_peak_usd_per_kwh": rate["winter", "off_peak"],
                "baseline_credit_usd_per_kwh": g["baseline_credit_usd_per_kwh"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def build_nbt(src: Path) -> pd.DataFrame:
    """Long (year, month, day type, hour) rows of each vintage file -> wide rows with h00..h23."""
    parts = []
    for vintage, name in sorted(NBT_SRC.items()):
        long = pd.read_csv(src / name, dtype={"day_type": str})
        _require(long.notna().all().all(), f"{name}: missing values")
        _require(set(long["day_type"]) <= set(DAY_TYPES), f"{name}: unknown day types {set(long['day_type'])}")
        _require(
            np.allclose(
                long["generation_usd_per_kwh"] + long["delivery_usd_per_kwh"],
                long["total_usd_per_kwh"],
                rtol=0,
                atol=TOL_USD_PER_KWH,
            ),
            f"{name}: generation + delivery != total",
        )
        key = ["calendar_year", "month", "day_type", "hour_start"]
        _require(not long.duplicated(key).any(), f"{name}: duplicate rows")
        for year, g in long.groupby("calendar_year"):
            _require(year >= vintage, f"{name}: calendar year {year} precedes vintage {vintage}")
            _require(len(g) == 12 * 2 * 24, f"{name}: calendar {year} has {len(g)} rows, expected 576")
        wide = long.pivot(
            index=["calendar_year", "month", "day_type"], columns="hour_start", values="total_usd_per_kwh"
        )
        _require(list(wide.columns) == list(range(24)), f"{name}: hours are not 0..23")
        wide.columns = HOUR_COLUMNS
        wide = wide.reset_index()
        wide.insert(0, "vintage", vintage)
        parts.append(wide)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["vintage", "calendar_year", "month", "day_type"], kind="stable").reset_index(drop=True)


def to_csv_text(df: pd.DataFrame) -> str:
    """Fixed 5-decimal CSV text with '\\n' line ends; checks the text reads back to exactly ``df``."""
    text = df.to_csv(index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")
    back = pd.read_csv(io.StringIO(text), dtype={"effective_date": str, "advice_letter": str, "day_type": str})
    floats = df.select_dtypes("float").columns
    _require(
        np.array_equal(back[floats].to_numpy(), df[floats].to_numpy()),
        f"writing with {DECIMALS} decimals would change a value",
    )
    return text


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SystemExit(f"build_tariff_data: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="folder of the shared PG&E CSVs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="energy_env/tariff_data")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    if not args.src.is_dir():
        raise SystemExit(f"build_tariff_data: source folder not found: {args.src}")

    outputs = {ETOUC_OUT: to_csv_text(build_e_tou_c(args.src)), NBT_OUT: to_csv_text(build_nbt(args.src))}
    stale = []
    for name, text in outputs.items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path} ({text.count(chr(10)) - 1} rows)")
    if stale:
        print(f"out of date: {', '.join(stale)}; rerun benchmarks/build_tariff_data.py", file=sys.stderr)
        return 1
    if args.check:
        print("tariff_data is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
