"""PostgreSQL (including Supabase's own Postgres) as a data source and an import target, via psycopg 3.

* The DSN comes from an environment variable (``WATTSHARE_PG_DSN`` by default) or a ``.env`` file;
  messages name the server as ``user@host:port/db`` and never show the password or the DSN.
* Every query is parameterised. Table and schema names pass :func:`~energy_env.data.tables.validate_identifier`
  first and enter SQL only as ``psycopg.sql.Identifier``; column names are the fixed names of a
  layout (``tables.py``) found in ``information_schema``.
* Reads filter on the server (household ids, time window), run in one read-only REPEATABLE READ
  transaction (so the count and the rows see the same snapshot), fetch through a server-side cursor
  ``page_rows`` at a time, in a stable order (key, time), and check the number of rows against
  ``count(*)``. Ids are compared without surrounding whitespace (``btrim``), the package's one rule
  for ids (:func:`~energy_env.data.rows.clean_id`).
* Writes (``wattshare import``) go in batches: COPY into a temporary table, then
  ``INSERT ... ON CONFLICT (primary key) DO UPDATE ... WHERE IS DISTINCT FROM``, one transaction per
  batch. Running an import twice leaves the same rows, and the report says how many rows were
  inserted, updated or already identical.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from energy_env.data.dataset import DataError
from energy_env.data.resample import KEY, TS
from energy_env.data.redact import redact
from energy_env.data.rows import ID_WHITESPACE, RawRows, TableLocator, TimeWindow, clean_id, natural_key
from energy_env.data.settings import read_setting
from energy_env.data.tables import (
    CONSUMPTION,
    Layout,
    detect_pricing_layout,
    match_columns,
    validate_identifier,
)

try:  # psycopg is a runtime dependency, but keep ``import energy_env.data`` working without it
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
except ImportError:  # pragma: no cover - exercised only where psycopg is not installed
    psycopg = None  # type: ignore[assignment]

DEFAULT_DSN_ENV = "WATTSHARE_PG_DSN"
_UTC = "SET LOCAL TIME ZONE 'UTC'"


@dataclass
class WriteReport:
    """What an import did to one table: rows sent, and of those inserted / updated / unchanged."""

    target: str
    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    batches: int = 0
    skipped: Counter = field(default_factory=Counter)
    created: bool = False

    def summary(self) -> str:
        parts = [f"{self.target}: {self.rows_in} rows in {self.batches} batch(es)"]
        if self.inserted or self.updated or self.unchanged:
            parts.append(f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged")
        if self.created:
            parts.append("table created")
        lines = ["; ".join(parts)]
        lines += [f"  skipped {n}: {why}" for why, n in self.skipped.most_common()]
        return "\n".join(lines)


def _require_psycopg() -> None:
    if psycopg is None:
        raise DataError("PostgreSQL support needs psycopg 3: pip install 'psycopg[binary]'")


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` of a DSN, without its password (or ``<unparseable DSN>``)."""
    _require_psycopg()
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    host = parts.get("host") or "localhost"
    if str(host).startswith("/"):
        host = f"socket {host}"
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"{user}{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class PostgresSource:
    """A PostgreSQL database as a :class:`~energy_env.data.rows.Source` and an import target."""

    def __init__(self, dsn: str, schema: str = "public", page_rows: int = 1000, connect_timeout_s: int = 10) -> None:
        _require_psycopg()
        self._dsn = dsn  # secret: never put in a message, a name or a repr
        try:
            self._password = conninfo_to_dict(dsn).get("password")
        except psycopg.ProgrammingError:
            raise DataError("PostgreSQL: the DSN is not a valid connection string (not shown, it may hold a password)") from None
        self.schema = validate_identifier(schema, "schema name")
        if page_rows < 1:
            raise DataError(f"page_rows must be >= 1, got {page_rows}")
        self.page_rows = int(page_rows)
        self.connect_timeout_s = connect_timeout_s
        self.label = f"postgres {describe_dsn(dsn)}"

    @classmethod
    def from_env(
        cls, dsn_env: str = DEFAULT_DSN_ENV, env_file: str | None = ".env", schema: str = "public", page_rows: int = 1000
    ) -> "PostgresSource":
        """Read the DSN from ``$dsn_env`` (or ``env_file``)."""
        dsn = read_setting(dsn_env, env_file)
        if not dsn:
            where = f" or in {env_file}" if env_file else ""
            raise DataError(
                f"PostgreSQL: no connection string: set the environment variable {dsn_env}{where} to a DSN such as "
                "postgresql://user:password@host:5432/dbname (Supabase: Project Settings > Database > Connection string)"
            )
        return cls(dsn, schema=schema, page_rows=page_rows)

    def __repr__(self) -> str:
        return f"PostgresSource({self.label!r}, schema={self.schema!r})"

    def describe(self) -> str:
        return self.label

    def _where(self, table: str) -> str:
        return f"{self.label} table {self.schema}.{table}"

    def _error(self, err: Exception, table: str | None = None, doing: str = "query") -> DataError:
        text = redact(str(err).strip(), self._password, self._dsn)
        where = self._where(table) if table else self.label
        return DataError(f"{where}: {doing} failed: {text}")

    def connect(self, autocommit: bool = False) -> "psycopg.Connection":
        """A new connection.

        ``autocommit=True`` makes every ``conn.transaction()`` block a real transaction (not a
        savepoint inside an implicit one), which the batched writes rely on. Server-side prepared
        statements are off (``prepare_threshold=None``) and the time zone is set per transaction
        (``SET LOCAL``), not per session, so that a transaction-mode pooler (Supabase's port 6543)
        works too.
        """
        try:
            return psycopg.connect(
                self._dsn, connect_timeout=self.connect_timeout_s, autocommit=autocommit, prepare_threshold=None
            )
        except psycopg.Error as err:
            raise self._error(err, doing="connecting") from None

    # ----------------------------------------------------------------------------------- catalogue

    @staticmethod
    def _id(name: str) -> "sql.Composed":
        """An id column as text without surrounding whitespace (takes one parameter: ID_WHITESPACE)."""
        return sql.SQL("btrim({}::text, %s)").format(sql.Identifier(name))

    def _table(self, table: str) -> "sql.Composed":
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(validate_identifier(table)))

    def columns(self, conn: "psycopg.Connection", table: str) -> dict[str, str]:
        """Column name -> ``information_schema`` data type, in table order ({} if the table is absent)."""
        validate_identifier(table)
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, table),
        ).fetchall()
        return {name: data_type for name, data_type in rows}

    def _checked_columns(self, conn: "psycopg.Connection", table: str, layout: Layout | None) -> tuple[Layout, dict[str, tuple[str, str]]]:
        cols = self.columns(conn, table)
        if not cols:
            hint = " (create it with: wattshare import --create-schema ...)"
            raise DataError(f"{self._where(table)}: table does not exist{hint}")
        if layout is None:
            layout = detect_pricing_layout(list(cols), self._where(table))
        return layout, match_columns(layout, cols, self._where(table))

    # ---------------------------------------------------------------------------------------- reads

    def _time_filter(self, ts: tuple[str, str], layout: Layout, window: TimeWindow) -> tuple[list, list]:
        """SQL conditions and parameters for the window, on the time column's own clock."""
        name, data_type = ts
        if layout.time_column.kind == "local_time":
            start, end = window.local_bounds()
            expr = sql.SQL("{}::timestamp").format(sql.Identifier(name))
        else:
            start, end = window.utc_bounds()
            expr = sql.Identifier(name) if data_type == "timestamp with time zone" else sql.SQL("{}::timestamptz").format(sql.Identifier(name))
        conds, params = [], []
        if start is not None:
            conds.append(sql.SQL("{} >= %s").format(expr))
            params.append(start.to_pydatetime())
        if end is not None:
            conds.append(sql.SQL("{} < %s").format(expr))
            params.append(end.to_pydatetime())
        return conds, params

    def _read(
        self,
        table: str,
        layout: Layout,
        cols: dict[str, tuple[str, str]],
        conds: list,
        params: list,
    ) -> tuple[pd.DataFrame, int]:
        """Count, then fetch page by page, in one snapshot. Returns (rows by role, server count)."""
        roles = [c.role for c in layout.columns if c.role in cols]
        select = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(cols[r][0])) if r == "key" else sql.Identifier(cols[r][0]) for r in roles
        )
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
        order = sql.SQL(", ").join(
            sql.Identifier(cols[r][0]) for r in ("key", "market", "ts") if r in cols
        )
        tbl = self._table(table)
        count_q = sql.SQL("SELECT count(*) FROM {}{}").format(tbl, where)
        read_q = sql.SQL("SELECT {} FROM {}{} ORDER BY {}").format(select, tbl, where, order)
        with self.connect() as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                with conn.transaction():
                    conn.execute(_UTC)  # naive values (legacy text / timestamp columns) are read as UTC
                    expected = conn.execute(count_q, params).fetchone()[0]
                    chunks: list[list[tuple]] = []
                    with conn.cursor(name="wattshare_read") as cur:
                        cur.itersize = self.page_rows
                        cur.execute(read_q, params)
                        while page := cur.fetchmany(self.page_rows):
                            chunks.append(page)
            except psycopg.Error as err:
                raise self._error(err, table, "reading") from None
        rows = [r for page in chunks for r in page]
        if len(rows) != expected:
            raise DataError(f"{self._where(table)}: read {len(rows)} rows but count(*) is {expected} in the same snapshot")
        frame = pd.DataFrame.from_records(rows, columns=roles) if rows else pd.DataFrame(columns=roles)
        return frame, int(expected)

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        """Distinct household ids with rows in ``window`` (on the server), in natural order (a table has no order)."""
        with self.connect() as conn:
            layout, cols = self._checked_columns(conn, table, CONSUMPTION)
            conds, params = self._time_filter(cols["ts"], layout, window)
            where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
            q = sql.SQL("SELECT DISTINCT {} FROM {}{}").format(self._id(cols["key"][0]), self._table(table), where)
            try:
                with conn.transaction():
                    conn.execute(_UTC)
                    rows = conn.execute(q, [ID_WHITESPACE, *params]).fetchall()
                    return sorted((r[0] for r in rows if r[0] is not None and r[0] != ""), key=natural_key)
            except psycopg.Error as err:
                raise self._error(err, table, "listing households") from None

    def read_consumption(self, table: str, households: Sequence[str], window: TimeWindow) -> RawRows:
        """Rows of ``households`` in ``window``, ordered by household and time; the count is checked."""
        with self.connect() as conn:
            layout, cols = self._checked_columns(conn, table, CONSUMPTION)
        conds, params = self._time_filter(cols["ts"], layout, window)
        conds.append(sql.SQL("{} = ANY(%s)").format(self._id(cols["key"][0])))
        params.extend([ID_WHITESPACE, [clean_id(h) for h in households]])
        frame, expected = self._read(table, layout, cols, conds, params)
        frame = frame.rename(columns={"key": KEY, "ts": TS})
        where = self._where(table)
        locator = lambda minutes: TableLocator(where, cols["key"][0], cols["ts"][0], minutes, window.tz)  # noqa: E731
        return RawRows(frame, where, "utc", _result_row_ref(cols), layout, expected, locator=locator)

    def read_pricing(self, table: str, node: str, market: str | None, window: TimeWindow) -> RawRows:
        """Price rows of ``node`` (and ``market`` where the layout has one) in ``window``."""
        with self.connect() as conn:
            layout, cols = self._checked_columns(conn, table, None)
        conds, params = self._time_filter(cols["ts"], layout, window)
        node = clean_id(node)
        market = None if market is None else clean_id(market)
        conds.append(sql.SQL("{} = %s").format(self._id(cols["key"][0])))
        params.extend([ID_WHITESPACE, node])
        if "market" in cols and market is not None:
            conds.append(sql.SQL("{} = %s").format(self._id(cols["market"][0])))
            params.extend([ID_WHITESPACE, market])
        frame, expected = self._read(table, layout, cols, conds, params)
        if expected == 0:
            with self.connect() as conn:
                q = sql.SQL("SELECT DISTINCT {} FROM {} LIMIT 20").format(self._id(cols["key"][0]), self._table(table))
                nodes = sorted(r[0] for r in conn.execute(q, [ID_WHITESPACE]).fetchall() if r[0] is not None)
            what = f"node {node!r}" + (f", market {market!r}" if "market" in cols and market else "")
            raise DataError(f"{self._where(table)}: no rows for {what} ({window.describe()}); nodes present: {nodes}")
        zone = "local" if layout.time_column.kind == "local_time" else "utc"
        return RawRows(frame, self._where(table), zone, _result_row_ref(cols), layout, expected)

    # --------------------------------------------------------------------------------------- writes

    def ddl(self, layout: Layout, table: str) -> "sql.Composed":
        """``CREATE TABLE IF NOT EXISTS`` of ``layout`` as ``table`` in this source's schema."""
        col_defs = [
            sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.ddl_type), sql.SQL("" if c.nullable else " NOT NULL"))
            for c in layout.columns
        ]
        col_defs.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, layout.primary_key))))
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self._table(table), sql.SQL(", ").join(col_defs))

    def ensure_table(self, layout: Layout, table: str, create: bool) -> bool:
        """Check ``table`` has ``layout``'s columns and types; create it first if absent and ``create``.

        Returns True if the table was created.
        """
        with self.connect() as conn:
            cols = self.columns(conn, table)
            if not cols:
                if not create:
                    raise DataError(f"{self._where(table)}: table does not exist; pass --create-schema to create it")
                try:
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                    conn.execute(self.ddl(layout, table))
                    conn.commit()
                except psycopg.Error as err:
                    raise self._error(err, table, "creating the table") from None
                return True
            match_columns(layout, cols, self._where(table))
            return False

    def write_rows(self, layout: Layout, table: str, rows: pd.DataFrame, batch_rows: int = 5000) -> WriteReport:
        """Upsert ``rows`` (columns named as in ``layout``) in batches; idempotent.

        Rows repeating a primary key within the input are dropped (the first is kept) and counted.
        """
        report = WriteReport(self._where(table), rows_in=len(rows))
        names = [c.name for c in layout.columns if c.name in rows.columns]
        pk = list(layout.primary_key)
        dup = rows.duplicated(pk, keep="first")
        if dup.any():
            report.skipped["repeats a primary key of an earlier row"] += int(dup.sum())
            rows = rows[~dup]
        with self.connect(autocommit=True) as conn:
            actual = self.columns(conn, table)
            if not actual:
                raise DataError(f"{self._where(table)}: table does not exist; pass --create-schema to create it")
            match_columns(layout, actual, self._where(table))
            tbl = self._table(table)
            idents = [sql.Identifier(n) for n in names]
            non_key = [sql.Identifier(n) for n in names if n not in pk]
            stage = sql.Identifier("wattshare_stage")
            upsert = sql.SQL(
                "INSERT INTO {tbl} ({cols}) SELECT {cols} FROM {stage} "
                "ON CONFLICT ({pk}) DO UPDATE SET {sets} "
                "WHERE ({old}) IS DISTINCT FROM ({new}) "
                "RETURNING (xmax = 0)"
            ).format(
                tbl=tbl,
                cols=sql.SQL(", ").join(idents),
                stage=stage,
                pk=sql.SQL(", ").join(map(sql.Identifier, pk)),
                sets=sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(c, c) for c in non_key),
                old=sql.SQL(", ").join(sql.SQL("{}.{}").format(tbl, c) for c in non_key),
                new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(c) for c in non_key),
            )
            try:
                for batch in _batches(rows[names], batch_rows):
                    with conn.transaction():
                        conn.execute(
                            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(stage, tbl)
                        )
                        with conn.cursor() as cur:
                            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, sql.SQL(", ").join(idents))) as copy:
                                for record in batch:
                                    copy.write_row(record)
                            flags = [r[0] for r in cur.execute(upsert).fetchall()]
                    report.batches += 1
                    report.inserted += sum(flags)
                    report.updated += len(flags) - sum(flags)
                    report.unchanged += len(batch) - len(flags)
            except psycopg.Error as err:
                raise self._error(err, table, f"writing batch {report.batches + 1}") from None
        return report


def _batches(frame: pd.DataFrame, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows as tuples of Python values (NaN -> None, Timestamp -> datetime), ``size`` at a time."""
    if size < 1:
        raise DataError(f"batch size must be >= 1, got {size}")
    for start in range(0, len(frame), size):
        part = frame.iloc[start : start + size]
        cols = []
        for name in part.columns:
            s = part[name]
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                cols.append([None if pd.isna(v) else v.to_pydatetime() for v in s])
            elif pd.api.types.is_float_dtype(s.dtype):
                arr = s.to_numpy(dtype=np.float64)
                cols.append([None if np.isnan(v) else float(v) for v in arr])
            else:
                cols.append([None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in s.tolist()])
        yield list(zip(*cols))


def _result_row_ref(cols: dict[str, tuple[str, str]]) -> Any:
    order = ", ".join(cols[r][0] for r in ("key", "market", "ts") if r in cols)
    return lambda i: f"result row {i + 1} (ordered by {order})"


__all__ = ["DEFAULT_DSN_ENV", "PostgresSource", "WriteReport", "describe_dsn"]
