"""A real PostgreSQL server: import -> load -> env, paging, filters, injection, empty table, wrong types.

The server is ``$WATTSHARE_TEST_PG_DSN`` if set (``.ci/run`` starts one with ``.ci/postgres.sh``),
else a throw-away one started here (``tests/pg_server.py``), else the module is skipped with a
message saying how to get one (``WATTSHARE_REQUIRE_PG=1`` turns that skip into a failure, as in CI).
Every test works in a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import numpy as np
import pandas as pd
import pytest

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg 3: pip install 'psycopg[binary]'")
from psycopg import sql  # noqa: E402

import pg_server  # noqa: E402
from conftest import SHARED_DATA, require_shared  # noqa: E402
from energy_env.config import DatabaseConfig, make_config  # noqa: E402
from energy_env.data.caiso import PriceSourceOptions, load_price_series  # noqa: E402
from energy_env.data.dataset import DataError  # noqa: E402
from energy_env.data.postgres import PostgresSource  # noqa: E402
from energy_env.data.sources import ExternalDataOptions, load_consumption  # noqa: E402
from energy_env.data.synthetic import generate_synthetic  # noqa: E402
from energy_env.data.tables import CONSUMPTION  # noqa: E402
from energy_env.env import WattshareParallelEnv  # noqa: E402
from train import import_data  # noqa: E402
from train.import_data import first_days  # noqa: E402


@pytest.fixture(scope="module")
def pg_dsn():
    dsn = os.environ.get("WATTSHARE_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    server, dsn_or_reason = pg_server.start_throwaway()
    if server is None:
        message = f"PostgreSQL not available ({dsn_or_reason}): {pg_server.HOW_TO_GET}"
        if os.environ.get("WATTSHARE_REQUIRE_PG"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield dsn_or_reason
    finally:
        server.stop()


@pytest.fixture
def schema(pg_dsn, monkeypatch):
    """A fresh schema, and WATTSHARE_PG_DSN pointing at the server (no .env read)."""
    name = f"wt_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("WATTSHARE_PG_DSN", pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _sql(dsn: str, query, params=()):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def _count(dsn: str, schema: str, table: str) -> int:
    return _sql(dsn, sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))[0][0]


def _import(schema: str, *args: str) -> int:
    return import_data.main([*args, "--to", "postgres", "--schema", schema, "--env-file", "/nonexistent/.env"])


def _opts(schema: str, page_rows: int = 1000, **kw) -> ExternalDataOptions:
    return ExternalDataOptions(source="postgres", database=_db(schema, page_rows=page_rows), **kw)


def _db(schema: str = "public", **kw) -> DatabaseConfig:
    return DatabaseConfig(db_schema=schema, env_file=None, **kw)


def test_import_then_load_then_env_round_trip(pg_dsn, schema, capsys):
    # 3 homes x 10 days x 48 = 1,440 rows: more than one 1,000-row page
    assert _import(schema, "--from", "synthetic", "--households", "3", "--days", "10", "--create-schema") == 0
    out = capsys.readouterr().out
    assert "1440 inserted, 0 updated, 0 unchanged" in out and "table created" in out
    assert "postgresql://" not in out  # the server is named user@host:port/db, never by its DSN
    ds, report = load_consumption(_opts(schema))
    expected = first_days(generate_synthetic(3, 2025, 0), 10)
    assert ds.household_ids == expected.household_ids
    assert ds.timestamps.equals(expected.timestamps)
    np.testing.assert_array_equal(ds.load_kwh, expected.load_kwh)  # float8 round trip is exact
    np.testing.assert_array_equal(ds.pv_kwh, expected.pv_kwh)
    assert (report.rows_read, report.expected_rows, report.rows_kept, report.rows_rejected) == (1440, 1440, 1440, 0)
    assert ds.load_report is report and ds.source == report.source
    assert ds.locate(2, 0) == (  # local midnight of 1 January = 08:00Z
        f"{report.source}: the row of household 'household_2' with interval_start_utc = 2025-01-01T08:00Z "
        "(household household_2, 2025-01-01 00:00 local)"
    )
    env = WattshareParallelEnv(make_config(num_households=3), dataset=ds)
    env.reset(options={"day": 0, "split": "all"})
    _, rewards, *_ = env.step({a: np.full(1, 0.5, dtype=np.float32) for a in env.agents})
    assert all(np.isfinite(r) for r in rewards.values())


def test_first_homes_of_a_table_are_in_natural_order(pg_dsn, schema):
    """A table has no order: household_2 comes before household_10 (text order would not)."""
    assert _import(schema, "--from", "synthetic", "--households", "12", "--days", "1", "--create-schema") == 0
    ds, _ = load_consumption(_opts(schema), num_households=4)
    assert ds.household_ids == ("household_0", "household_1", "household_2", "household_3")
    every, _ = load_consumption(_opts(schema), num_households=None)
    assert every.household_ids == tuple(f"household_{i}" for i in range(12))


def test_import_is_idempotent_and_updates_changed_rows(pg_dsn, schema, capsys):
    args = ("--from", "synthetic", "--households", "2", "--days", "3", "--create-schema", "--batch-rows", "100")
    assert _import(schema, *args) == 0
    capsys.readouterr()
    before = _sql(pg_dsn, sql.SQL("SELECT * FROM {}.consumption ORDER BY 1, 2").format(sql.Identifier(schema)))
    assert _import(schema, *args) == 0
    assert "288 rows in 3 batch(es); 0 inserted, 0 updated, 288 unchanged" in capsys.readouterr().out
    after = _sql(pg_dsn, sql.SQL("SELECT * FROM {}.consumption ORDER BY 1, 2").format(sql.Identifier(schema)))
    assert before == after
    _sql(pg_dsn, sql.SQL("UPDATE {}.consumption SET load_kwh = 99 WHERE household_id = 'household_1' AND interval_start_utc = (SELECT min(interval_start_utc) FROM {}.consumption)").format(sql.Identifier(schema), sql.Identifier(schema)))
    assert _import(schema, *args) == 0
    assert "0 inserted, 1 updated, 287 unchanged" in capsys.readouterr().out


def test_paging_and_server_side_filters(pg_dsn, schema):
    assert _import(schema, "--from", "synthetic", "--households", "4", "--days", "6", "--create-schema") == 0
    # small pages: 1,152 rows in 12 fetches, same result
    ds_paged, rep = load_consumption(_opts(schema, page_rows=100))
    assert rep.rows_read == rep.expected_rows == 4 * 6 * 48
    ds_full, _ = load_consumption(_opts(schema, page_rows=5000))
    np.testing.assert_array_equal(ds_paged.load_kwh, ds_full.load_kwh)
    # filters act on the server: only the selected rows are read
    opts = _opts(schema, households=("household_3", "household_1"), start_date=dt.date(2025, 1, 2), end_date=dt.date(2025, 1, 3))
    ds, rep = load_consumption(opts)
    assert rep.rows_read == rep.expected_rows == 2 * 2 * 48
    assert ds.household_ids == ("household_3", "household_1") and ds.timestamps[0] == pd.Timestamp("2025-01-02")
    np.testing.assert_array_equal(ds.load_kwh[:, 1], ds_full.load_kwh[48:144, 1])
    # num_households picks the first homes listed on the server
    ds2, _ = load_consumption(_opts(schema), num_households=2)
    assert ds2.household_ids == ("household_0", "household_1")


def test_injection_attempts_never_reach_sql(pg_dsn, schema):
    assert _import(schema, "--from", "synthetic", "--households", "1", "--days", "1", "--create-schema") == 0
    for table in ("consumption; DROP TABLE consumption; --", 'consumption" --', "public.consumption", "x' OR '1'='1"):
        with pytest.raises(DataError, match="invalid table name"):
            load_consumption(_opts(schema, table=table))
    with pytest.raises(DataError, match="invalid schema name"):
        PostgresSource(pg_dsn, schema="public; DROP SCHEMA public CASCADE")
    # a hostile household id is a parameter: it matches nothing and breaks nothing
    with pytest.raises(DataError, match="no usable rows for household"):
        load_consumption(_opts(schema, households=("x'); DROP TABLE consumption; --",)))
    assert _count(pg_dsn, schema, "consumption") == 48


def test_empty_and_missing_tables(pg_dsn, schema):
    src = PostgresSource(pg_dsn, schema=schema)
    assert src.ensure_table(CONSUMPTION, "consumption", create=True) is True
    assert src.ensure_table(CONSUMPTION, "consumption", create=True) is False  # already there
    with pytest.raises(DataError, match="table 'consumption' has no rows"):
        load_consumption(_opts(schema))
    with pytest.raises(DataError, match=rf"table {schema}.nothing_here: table does not exist"):
        load_consumption(_opts(schema, table="nothing_here"))
    with pytest.raises(DataError, match=r"table does not exist; pass --create-schema"):
        src.ensure_table(CONSUMPTION, "other", create=False)


def test_wrong_column_types_are_named(pg_dsn, schema):
    _sql(pg_dsn, sql.SQL(
        "CREATE TABLE {}.bad (household_id text, interval_start_utc timestamptz, load_kwh text, pv_kwh double precision)"
    ).format(sql.Identifier(schema)))
    _sql(pg_dsn, sql.SQL("INSERT INTO {}.bad VALUES ('h', '2025-01-01T08:00Z', 'lots', 0)").format(sql.Identifier(schema)))
    with pytest.raises(DataError, match=r"table .*\.bad: column 'load_kwh' has type text, but the consumption layout needs double precision"):
        load_consumption(_opts(schema, table="bad"))
    _sql(pg_dsn, sql.SQL(
        "CREATE TABLE {}.naive (household_id text, interval_start_utc timestamp, load_kwh real, pv_kwh real)"
    ).format(sql.Identifier(schema)))
    with pytest.raises(DataError, match="column 'interval_start_utc' has type timestamp without time zone.*timestamp with time zone"):
        load_consumption(_opts(schema, table="naive"))
    rows = pd.DataFrame({"household_id": ["h"], "interval_start_utc": [pd.Timestamp("2025-01-01", tz="UTC")], "load_kwh": [1.0], "pv_kwh": [0.0]})
    with pytest.raises(DataError, match="column 'load_kwh' has type text"):
        PostgresSource(pg_dsn, schema=schema).write_rows(CONSUMPTION, "bad", rows)


def test_connection_errors_never_show_the_password():
    src = PostgresSource("postgresql://me:hunter2-secret@127.0.0.1:1/db", schema="public")
    assert "hunter2" not in repr(src) and "hunter2" not in src.describe()
    with pytest.raises(DataError, match="connecting failed") as err:
        load_consumption(ExternalDataOptions(source="postgres", database=_db()), source=src)
    assert "hunter2" not in str(err.value)
    with pytest.raises(DataError, match="no connection string: set the environment variable WATTSHARE_NO_SUCH_VAR"):
        PostgresSource.from_env("WATTSHARE_NO_SUCH_VAR", env_file=None)


def test_pricing_in_the_team_layout_round_trip(pg_dsn, schema, tmp_path, capsys):
    # the original team's layout: INTERVALSTARTTIME_GMT, NODE, Price KWH; hourly, several nodes
    hours = pd.date_range("2024-10-01 07:00", periods=48, freq="h", tz="UTC")  # 2 local days
    nodes = ["DLAP_PGAE-APND", "DLAP_SCE-APND", "SOME_NODE"]
    price = {n: np.round(np.sin(np.arange(48) / 5 + i) * 0.1 + 0.05, 5) for i, n in enumerate(nodes)}
    df = pd.concat([
        pd.DataFrame({"INTERVALSTARTTIME_GMT": hours.strftime("%Y-%m-%dT%H:%M:%S-00:00"), "NODE": n, "Price KWH": price[n]})
        for n in nodes
    ])
    df.to_csv(tmp_path / "team.csv", index=False)
    assert _import(schema, "--from", "file", "--path", str(tmp_path / "team.csv"), "--create-schema") == 0
    assert "144 inserted" in capsys.readouterr().out
    series = load_price_series(PriceSourceOptions(source="postgres", node="DLAP_PGAE-APND", database=_db(schema)))
    assert series.report.rows_read == series.report.expected_rows == 48  # one node, filtered on the server
    assert len(series.timestamps) == 96 and series.timestamps[0] == pd.Timestamp("2024-10-01")
    np.testing.assert_allclose(series.usd_per_kwh[0::2], price["DLAP_PGAE-APND"])
    assert price["DLAP_PGAE-APND"].min() < 0  # negative prices are kept
    with pytest.raises(DataError, match=r"no rows for node 'NOPE'.*nodes present: \['DLAP_PGAE-APND'"):
        load_price_series(PriceSourceOptions(source="postgres", node="NOPE", database=_db(schema)))


def test_shared_caiso_file_through_postgres(pg_dsn, schema, capsys):
    path = require_shared(SHARED_DATA / "caiso" / "caiso_2024_dlap_hourly_lmp.csv")
    args = ("--from", "file", "--path", str(path), "--node", "DLAP_PGAE-APND", "--market", "DAM", "--create-schema")
    assert _import(schema, *args) == 0
    assert "5486 inserted" in capsys.readouterr().out
    opts = PriceSourceOptions(
        source="postgres", database=_db(schema), start_date=dt.date(2024, 10, 1), end_date=dt.date(2024, 10, 9)
    )
    series = load_price_series(opts)
    assert len(series.timestamps) == 9 * 48
    # HE1-HE9 are missing every day: each local day has one gap of 18 slots, 00:00 to 09:00, filled
    assert [(g.start.strftime("%H:%M"), g.intervals) for g in series.report.gaps] == [("00:00", 18)] * 9
    assert all(g.filled_by == "interpolate" for g in series.report.gaps)
    assert 0.0 < series.usd_per_kwh.min() and series.usd_per_kwh.max() < 0.25


def test_legacy_pricing_table_with_text_times(pg_dsn, schema):
    """The team's table may hold its GMT times as text without an offset: read as UTC, filtered on the server."""
    _sql(pg_dsn, sql.SQL('CREATE TABLE {}.legacy ("INTERVALSTARTTIME_GMT" text, "NODE" text, "Price KWH" double precision)').format(sql.Identifier(schema)))
    hours = pd.date_range("2024-10-01 07:00", periods=72, freq="h")  # 3 local days (PDT = UTC-7)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {}.legacy VALUES (%s, %s, %s)").format(sql.Identifier(schema)),
                [(t.strftime("%Y-%m-%d %H:%M:%S"), "N1", 0.01 * i) for i, t in enumerate(hours)],
            )
    opts = PriceSourceOptions(
        source="postgres", table="legacy", node="N1", database=_db(schema),
        start_date=dt.date(2024, 10, 2), end_date=dt.date(2024, 10, 2),
    )
    series = load_price_series(opts)
    assert series.report.rows_read == 24  # the window was applied on the server
    assert series.timestamps[0] == pd.Timestamp("2024-10-02") and not series.report.gaps
    np.testing.assert_allclose(series.usd_per_kwh[::2], 0.01 * np.arange(24, 48))


def test_ids_with_surrounding_whitespace_are_one_home(pg_dsn, schema):
    assert _import(schema, "--from", "synthetic", "--households", "2", "--days", "2", "--create-schema") == 0
    clean, _ = load_consumption(_opts(schema))
    tbl = sql.SQL("{}.consumption").format(sql.Identifier(schema))
    # written by another tool: half of household_0's rows with a leading space, half with a trailing tab
    _sql(pg_dsn, sql.SQL("UPDATE {} SET household_id = CASE WHEN extract(hour FROM interval_start_utc) < 12 "
                         "THEN ' household_0' ELSE E'household_0\\t' END WHERE household_id = 'household_0'").format(tbl))
    assert len(_sql(pg_dsn, sql.SQL("SELECT DISTINCT household_id FROM {}").format(tbl))) == 3
    ds, report = load_consumption(_opts(schema))  # listed with btrim: two homes
    assert ds.household_ids == clean.household_ids and report.rows_rejected == 0
    np.testing.assert_array_equal(ds.load_kwh, clean.load_kwh)
    ds, _ = load_consumption(_opts(schema, households=(" household_0 ",)))  # filtered on the server by the same rule
    np.testing.assert_array_equal(ds.load_kwh[:, 0], clean.load_kwh[:, 0])


def test_the_supabase_id_pattern_means_the_same_in_postgresql(pg_dsn):
    from energy_env.data.supabase_source import id_pattern

    pattern = id_pattern(["household_1", "a.b(c)|x", "né"])
    values = ["household_1", " household_1\t", "household_10", "householdX1", "a.b(c)|x", "axb(c)", "x", " né"]
    got = [r[0] for r in _sql(pg_dsn, "SELECT v ~ %s FROM unnest(%s::text[]) AS v", (pattern, values))]
    assert got == [True, True, False, False, True, False, False, True]
