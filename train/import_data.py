"""``wattshare import``: load a data set into the ``consumption`` / ``pricing`` tables of PostgreSQL or Supabase.

Examples::

    # 10 synthetic homes, first 14 days of 2025, into the Postgres named by $WATTSHARE_PG_DSN
    wattshare import --from synthetic --households 10 --days 14 --to postgres --create-schema

    # the CityLearn 2022 homes into Supabase (SUPABASE_URL / SUPABASE_KEY from the environment or .env)
    wattshare import --from citylearn --path ../shared/data/citylearn_2022 --to supabase

    # CAISO prices (either CAISO layout; the market column, where present, picks DAM or RTM)
    wattshare import --from file --path ../shared/data/caiso/caiso_2024_dlap_hourly_lmp.csv --to postgres

    # the SQL to create the tables yourself (e.g. in Supabase's SQL editor)
    wattshare import --print-ddl

Writes are batched and idempotent (upserts on the primary key): running the same import twice leaves
the same rows. Data sets on the package's naive local grid are written in UTC: the two
spring-forward slots a year do not exist on a clock and are skipped (reported); the fall-back slots
are written at their first (daylight time) occurrence. Files are written at their own resolution
after row checks (bad rows are reported, with reasons, and not written).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from energy_env.config import INTERVALS_PER_DAY
from energy_env.data.dataset import DataError, Dataset
from energy_env.data.resample import KEY, LOCAL_TZ, TS
from energy_env.data.redact import redact
from energy_env.data.report import LoadReport
from energy_env.data.rows import RawRows, ValueSpec, validate_rows
from energy_env.data.writing import dataset_to_rows
from energy_env.data.tables import CAISO_PRICE_KWH, CONSUMPTION, Layout, ddl, detect_pricing_layout, match_columns

SOURCES = ("synthetic", "citylearn", "file")
TARGETS = ("postgres", "supabase")


def first_days(ds: Dataset, days: int) -> Dataset:
    """The first ``days`` whole days of a data set."""
    if days < 1:
        raise DataError(f"--days must be >= 1, got {days}")
    t = min(days * INTERVALS_PER_DAY, ds.num_intervals)
    cut = lambda a: None if a is None else np.ascontiguousarray(a[:t])  # noqa: E731
    return Dataset(
        name=ds.name, timestamps=ds.timestamps[:t], load_kwh=cut(ds.load_kwh), pv_kwh=cut(ds.pv_kwh),
        household_ids=ds.household_ids, pv_capacity_kw=ds.pv_capacity_kw.copy(),
        temperature_c=cut(ds.temperature_c), irradiance_w_per_m2=cut(ds.irradiance_w_per_m2), flags=dict(ds.flags),
        source=ds.source, locator=ds.locator,
    )


def rows_from_dataset(ds: Dataset, tz: str = LOCAL_TZ) -> tuple[pd.DataFrame, Counter]:
    """``consumption`` rows of a data set (see :func:`energy_env.data.writing.dataset_to_rows`)."""
    return dataset_to_rows(ds, tz)


def rows_from_file(path: str, market: str | None, node: str | None) -> tuple[Layout, pd.DataFrame, LoadReport]:
    """Checked rows of a consumption or pricing file, in the layout's column names (times in UTC).

    The layout follows the columns: ``consumption``, or one of the CAISO pricing layouts (written
    to ``pricing`` in the original team's layout).
    """
    from energy_env.data.files import read_table_file

    df = read_table_file(path)
    df.columns = [str(c).strip() for c in df.columns]
    where = f"file {path}"
    lower = {c.lower() for c in df.columns}
    if all(c.name.lower() in lower for c in CONSUMPTION.required):
        layout = CONSUMPTION
        values = [ValueSpec("load_kwh"), ValueSpec("pv_kwh", clip_tolerance=0.01), ValueSpec("temperature_c", nullable=True, non_negative=False)]
    else:
        layout = detect_pricing_layout(list(df.columns), where)
        values = [ValueSpec("price_usd_per_kwh", non_negative=False)]
    cols = {role: name for role, (name, _) in match_columns(layout, {c: "" for c in df.columns}, where, check_types=False).items()}
    keep = np.ones(len(df), dtype=bool)
    if node is not None and layout is not CONSUMPTION:
        keep &= (df[cols["key"]].astype(str).str.strip() == node).to_numpy()
    if "market" in cols:
        markets = sorted(set(df[cols["market"]].dropna().astype(str).str.strip()))
        if market is None and len(markets) > 1:
            raise DataError(f"{where}: rows of markets {markets}; choose one with --market (the pricing table holds one)")
        if market is not None:
            if market not in markets:
                raise DataError(f"{where}: no rows for market {market!r}; it has {markets}")
            keep &= (df[cols["market"]].astype(str).str.strip() == market).to_numpy()
    picked = df.loc[keep, list(cols.values())].rename(columns={v: k for k, v in cols.items()}).reset_index(drop=True)
    lines = np.flatnonzero(keep) + 2
    zone = "local" if layout.time_column.kind == "local_time" else "utc"
    raw = RawRows(picked, where, zone, lambda i: f"file line {lines[i]}", layout)
    report = LoadReport(source=where)
    good = validate_rows(raw, values, report)
    report.rows_kept = len(good)
    report.check_balance()
    if layout is CONSUMPTION:
        out = pd.DataFrame({
            "household_id": good[KEY], "interval_start_utc": good[TS], "load_kwh": good["load_kwh"],
            "pv_kwh": good["pv_kwh"], "temperature_c": good["temperature_c"],
        })
        return CONSUMPTION, out, report
    out = pd.DataFrame({"INTERVALSTARTTIME_GMT": good[TS], "NODE": good[KEY], "Price KWH": good["price_usd_per_kwh"]})
    return CAISO_PRICE_KWH, out, report


def load_input(args: argparse.Namespace) -> tuple[Layout, pd.DataFrame, str]:
    """The rows to write, their layout, and a summary of how they were obtained."""
    if args.source == "file":
        if not args.path:
            raise DataError("--from file needs --path (a .csv or .parquet file)")
        layout, rows, report = rows_from_file(args.path, args.market, args.node)
        return layout, rows, report.summary()
    if args.source == "synthetic":
        from energy_env.data.synthetic import generate_synthetic

        ds = generate_synthetic(args.households or 10, args.year, args.seed)
    elif args.source == "citylearn":
        from energy_env.data.citylearn import load_citylearn

        if not args.path:
            raise DataError("--from citylearn needs --path (a folder holding schema.json)")
        ds = load_citylearn(args.path, include_faulty=args.include_faulty)
        if args.households:
            if args.households > ds.num_households:
                raise DataError(f"{args.path}: {ds.num_households} homes, but --households is {args.households}")
            ds = ds.select(list(range(args.households)))
    else:
        raise DataError(f"unknown --from {args.source!r}; expected one of {', '.join(SOURCES)}")
    if args.days:
        ds = first_days(ds, args.days)
    rows, skipped = rows_from_dataset(ds)
    lines = [f"{ds.name}: {ds.num_households} households x {ds.num_days} days -> {len(rows)} rows"]
    lines += [f"  skipped {n}: {why}" for why, n in skipped.items()]
    return CONSUMPTION, rows, "\n".join(lines)


def _input_layout(args: argparse.Namespace) -> Layout:
    """The layout ``--from`` produces (a file's layout follows its header)."""
    if args.source != "file" or not args.path:
        return CONSUMPTION
    from energy_env.data.files import read_table_file

    columns = {str(c).strip().lower() for c in read_table_file(args.path).columns}
    return CONSUMPTION if all(c.name.lower() in columns for c in CONSUMPTION.required) else CAISO_PRICE_KWH


def open_target(args: argparse.Namespace):
    """The target database (credentials from the environment / .env, never printed)."""
    if args.target == "postgres":
        from energy_env.data.postgres import PostgresSource

        return PostgresSource.from_env(args.dsn_env, args.env_file, schema=args.schema)
    from energy_env.data.supabase_source import SupabaseSource

    return SupabaseSource.from_env(args.env_file, schema=args.schema)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wattshare import", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--from", dest="source", choices=SOURCES, default="synthetic", help="what to load (default: synthetic)")
    p.add_argument("--path", default=None, help="CityLearn folder, or a CSV / Parquet file (consumption or CAISO pricing)")
    p.add_argument("--households", type=int, default=None, help="synthetic: homes to generate (default 10); citylearn: first N homes")
    p.add_argument("--year", type=int, default=2025, help="synthetic: calendar year")
    p.add_argument("--seed", type=int, default=0, help="synthetic: seed")
    p.add_argument("--days", type=int, default=None, help="only the first D days of the data set")
    p.add_argument("--include-faulty", action="store_true", help="citylearn: keep the homes the loader flags")
    p.add_argument("--node", default=None, help="pricing file: only this node (default: all)")
    p.add_argument("--market", default=None, help="pricing file with a market column: DAM or RTM")
    p.add_argument("--to", dest="target", choices=TARGETS, default="postgres", help="where to write (default: postgres)")
    p.add_argument("--table", default=None, help="target table (default: consumption or pricing)")
    p.add_argument("--schema", default="public", help="database schema (default: public)")
    p.add_argument("--create-schema", action="store_true", help="create the table if absent (PostgreSQL only)")
    p.add_argument("--batch-rows", type=int, default=None, help="rows per batch (default 5000 postgres, 500 supabase)")
    p.add_argument("--dsn-env", default="WATTSHARE_PG_DSN", help="environment variable holding the PostgreSQL DSN")
    p.add_argument("--env-file", default=".env", help="a .env file read after the environment (default: .env)")
    p.add_argument("--print-ddl", action="store_true", help="print CREATE TABLE statements and exit")
    p.add_argument("--dry-run", action="store_true", help="load and check the input, write nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``wattshare import``; returns the exit status (2 on a data or config error)."""
    args = build_parser().parse_args(argv)
    try:
        if args.print_ddl:
            # both tables by default; with --table, the table of the input's layout under that name
            layouts = [CONSUMPTION, CAISO_PRICE_KWH] if not args.table else [_input_layout(args)]
            for layout in layouts:
                print(ddl(layout, args.table, args.schema))
            return 0
        layout, rows, summary = load_input(args)
        print(redact(summary))
        table = args.table or layout.default_table
        if args.dry_run:
            print(f"dry run: {len(rows)} rows for table {args.schema}.{table} ({layout.name} layout); nothing written")
            return 0
        target = open_target(args)
        created = target.ensure_table(layout, table, args.create_schema)
        batch = args.batch_rows or (5000 if args.target == "postgres" else 500)
        report = target.write_rows(layout, table, rows, batch_rows=batch)
        report.created = created
        print(redact(report.summary()))
        return 0
    except (DataError, ValueError) as err:
        print(f"wattshare import: error: {redact(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
