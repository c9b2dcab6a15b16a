"""Supabase (PostgREST) as a data source and an import target, through the official ``supabase`` client.

* Credentials: ``SUPABASE_URL`` and ``SUPABASE_KEY`` (or ``SUPABASE_SERVICE_ROLE_KEY`` /
  ``SUPABASE_ANON_KEY``) from the environment or a ``.env`` file. The key, and any user-info in
  the URL (``https://user:pass@host``), are never printed: every message passes through
  :func:`~energy_env.data.redact.redact`, and ``repr`` / messages name the host only.
* Ids are matched without surrounding whitespace, the package's one rule
  (:func:`~energy_env.data.rows.clean_id`): text ids are filtered with a regular expression
  (PostgREST ``match``, ``^[ \t...]*(h1|h2)[ \t...]*$``), numeric ids with ``in``.
* Paging: PostgREST returns at most ``max-rows`` rows per request (1,000 on Supabase by default)
  whatever is asked, so every read pages with ``.range(offset, offset + page - 1)`` in a stable order
  (the table's key, then time), asks for ``count="exact"`` (the ``Content-Range: 0-999/40200``
  header), advances by the rows actually received, and checks at the end that it received exactly
  the count, and that the count did not change between pages.
* Households without a list: PostgREST has no ``DISTINCT``, so :meth:`SupabaseSource.list_households`
  walks the ids in order, one request per household (``household_id=gt.<last>&limit=1``).
* Errors name the table and the cause: a refused key (HTTP 401), a missing table (PostgREST
  ``PGRST205`` / ``42P01``, HTTP 404), a missing column (``42703``), a network error. PostgREST
  cannot run DDL: create tables with ``wattshare import --print-ddl`` in the SQL editor, or import
  through the project's Postgres connection string (``--to postgres``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import httpx
import pandas as pd

from energy_env.data.dataset import DataError
from energy_env.data.postgres import WriteReport
from energy_env.data.resample import KEY, TS
from energy_env.data.redact import redact
from energy_env.data.rows import ID_WHITESPACE, RawRows, TableLocator, TimeWindow, clean_id, natural_key
from energy_env.data.settings import read_setting
from energy_env.data.tables import CONSUMPTION, Layout, detect_pricing_layout, match_columns, validate_identifier

URL_NAMES = ("SUPABASE_URL",)
KEY_NAMES = ("SUPABASE_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ANON_KEY")
AUTH_CODES = {"PGRST300", "PGRST301", "PGRST302", "PGRST303"}
MISSING_TABLE_CODES = {"PGRST205", "42P01", "PGRST200"}


def id_pattern(ids: Sequence[str]) -> str:
    """A regular expression (PostgreSQL ARE and Python alike) matching any of ``ids`` with surrounding whitespace.

    ASCII punctuation in an id is escaped with a backslash (a literal in both dialects), so an id
    cannot inject regex syntax.
    """
    ws = "[" + "".join({" ": " ", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}[c] for c in ID_WHITESPACE) + "]*"
    alts = "|".join("".join(f"\\{c}" if c.isascii() and not c.isalnum() else c for c in clean_id(i)) for i in ids)
    return f"^{ws}({alts}){ws}$"


def _quoted(name: str) -> str:
    """A column name as PostgREST's ``select`` / ``order`` want it (quoted when it holds a space)."""
    return f'"{name}"' if not name.replace("_", "").isalnum() else name


class SupabaseSource:
    """A Supabase project's tables, read and written through PostgREST with the ``supabase`` client."""

    def __init__(
        self,
        url: str,
        key: str,
        schema: str = "public",
        page_rows: int = 1000,
        retry: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        from supabase import ClientOptions, SupabaseException, create_client

        self._key = key  # secret: redacted from every message
        self.url = url.rstrip("/")
        parsed = urlparse(self.url)
        self._secrets = (key, parsed.password, parsed.username and f"{parsed.username}:{parsed.password or ''}")
        # the host only: a URL's user-info (user:pass@) never reaches a message or a repr
        self.host = (parsed.hostname or "") + (f":{parsed.port}" if parsed.port else "") or redact(self.url, *self._secrets)
        self.safe_url = redact(self.url, *self._secrets)
        self.schema = validate_identifier(schema, "schema name")
        if page_rows < 1:
            raise DataError(f"page_rows must be >= 1, got {page_rows}")
        self.page_rows = int(page_rows)
        self._last_status: int | None = None
        options = ClientOptions(
            schema=self.schema,
            postgrest_client_timeout=timeout_s,
            postgrest_client_retry=retry,
            auto_refresh_token=False,
            persist_session=False,
        )
        try:
            self._client = create_client(self.url, key, options=options)
        except SupabaseException as err:
            raise DataError(f"supabase {self.host}: {self._redact(err)}") from None
        # PostgREST's error JSON carries no HTTP status; record it to tell a 401 from a 404.
        with warnings.catch_warnings():
            # supabase passes timeout/verify to postgrest, which postgrest itself calls deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            session = self._client.postgrest.session
        session.event_hooks.setdefault("response", []).append(self._record_status)

    def _redact(self, text: object) -> str:
        return redact(text, *self._secrets)

    def _record_status(self, response: httpx.Response) -> None:
        self._last_status = response.status_code

    @classmethod
    def from_env(cls, env_file: str | None = ".env", schema: str = "public", page_rows: int = 1000, **kwargs: Any) -> "SupabaseSource":
        """URL and key from the environment or ``env_file``; the message on absence names the variables."""
        url = read_setting(URL_NAMES, env_file)
        key = read_setting(KEY_NAMES, env_file)
        where = f" or in {env_file}" if env_file else ""
        if not url:
            raise DataError(f"Supabase: no project URL: set SUPABASE_URL in the environment{where} (https://<project>.supabase.co)")
        if not key:
            raise DataError(f"Supabase: no API key: set SUPABASE_KEY (or SUPABASE_SERVICE_ROLE_KEY) in the environment{where}")
        return cls(url, key, schema=schema, page_rows=page_rows, **kwargs)

    def __repr__(self) -> str:
        return f"SupabaseSource({self.host!r}, schema={self.schema!r})"

    def describe(self) -> str:
        return f"supabase {self.host}"

    def _where(self, table: str) -> str:
        return f"supabase {self.host} table {self.schema}.{table}"

    # ------------------------------------------------------------------------------------- requests

    def _execute(self, builder: Any, table: str, doing: str) -> Any:
        """Run a request; turn every failure into a DataError naming the table and the cause."""
        from postgrest.exceptions import APIError

        self._last_status = None
        try:
            return builder.execute()
        except APIError as err:
            raise DataError(f"{self._where(table)}: {doing} failed: {self._explain(err)}") from None
        except httpx.TimeoutException as err:
            raise DataError(f"{self._where(table)}: {doing} failed: timed out ({type(err).__name__}) reaching {self.safe_url}") from None
        except httpx.HTTPError as err:
            text = self._redact(err)
            raise DataError(
                f"{self._where(table)}: {doing} failed: network error ({type(err).__name__}: {text}); "
                f"check SUPABASE_URL ({self.safe_url}) and the connection"
            ) from None

    def _explain(self, err: Any) -> str:
        status = self._last_status
        code = str(err.code or "")
        message = self._redact(err.message or "")
        hint = self._redact(err.hint or "")
        detail = f" (PostgREST {code}: {message})" if code else (f" ({message})" if message else "")
        if status == 401 or code in AUTH_CODES or "api key" in message.lower() or "jwt" in message.lower():
            return (
                f"authentication failed (HTTP {status or 401}): the API key was refused{detail}; "
                "check SUPABASE_KEY (the key itself is not shown)"
            )
        if status == 403 or code == "42501":
            return f"permission denied (HTTP {status or 403}){detail}: the key's role may not use this table (grants or row level security)"
        if code in MISSING_TABLE_CODES or status == 404:
            return f"table not found (HTTP {status or 404}){detail}" + (f"; {hint}" if hint else "")
        if code == "42703":
            return f"missing column{detail}"
        if code == "PGRST103" or status == 416:
            return f"requested range not satisfiable (HTTP 416){detail}: the table changed while paging"
        return f"HTTP {status or '?'}{detail}" + (f"; hint: {hint}" if hint else "")

    def _probe_row(self, table: str) -> dict[str, Any] | None:
        """One row of the table (PostgREST exposes no catalogue: its keys are the columns); None if empty."""
        validate_identifier(table)
        resp = self._execute(self._client.table(table).select("*").limit(1), table, "reading the columns")
        return dict(resp.data[0]) if resp.data else None

    def _fetch_all(self, table: str, columns: list[str], apply: Callable[[Any], Any], order: list[str]) -> tuple[list[dict], int]:
        """Every matching row, page by page, with the count checked."""
        rows: list[dict] = []
        count: int | None = None
        offset = 0
        while True:
            q = self._client.table(table).select(*[_quoted(c) for c in columns], count="exact")
            q = apply(q)
            for col in order:
                q = q.order(_quoted(col))
            q = q.range(offset, offset + self.page_rows - 1)
            resp = self._execute(q, table, f"reading rows {offset}-{offset + self.page_rows - 1}")
            if resp.count is not None:
                if count is not None and resp.count != count:
                    raise DataError(
                        f"{self._where(table)}: the row count changed from {count} to {resp.count} while paging; "
                        "retry when the table is not being written"
                    )
                count = resp.count
            page = list(resp.data or [])
            rows.extend(page)
            offset += len(page)
            # advance by what came back: the server's max-rows may cap a page below page_rows
            if not page or (count is not None and offset >= count):
                break
            if count is None and len(page) < self.page_rows:
                break
        if count is None:
            raise DataError(f"{self._where(table)}: the server sent no row count (Content-Range); cannot check the read is complete")
        if len(rows) != count:
            raise DataError(f"{self._where(table)}: received {len(rows)} rows but the server counted {count}")
        return rows, count

    @staticmethod
    def _window_filter(q: Any, ts_name: str, window: TimeWindow, local: bool) -> Any:
        start, end = window.local_bounds() if local else window.utc_bounds()
        if start is not None:
            q = q.gte(ts_name, start.isoformat())
        if end is not None:
            q = q.lt(ts_name, end.isoformat())
        return q

    def _layout_columns(self, table: str, layout: Layout | None) -> tuple[Layout, dict[str, str], dict[str, Any]] | None:
        """(layout, role -> column, the probed row), or None for an empty table."""
        row = self._probe_row(table)
        if row is None:
            return None
        cols = list(row)
        if layout is None:
            layout = detect_pricing_layout(cols, self._where(table))
        matched = match_columns(layout, {c: "" for c in cols}, self._where(table), check_types=False)
        return layout, {role: name for role, (name, _) in matched.items()}, row

    @staticmethod
    def _id_filter(q: Any, column: str, ids: Sequence[str], sample: Any) -> Any:
        """Rows whose ``column`` is one of ``ids`` (whitespace-tolerant for text ids, see :func:`id_pattern`)."""
        if isinstance(sample, (int, float)) and not isinstance(sample, bool):  # a numeric column: ~ would fail
            return q.in_(column, [clean_id(i) for i in ids])
        return q.filter(column, "match", id_pattern(ids))

    # ---------------------------------------------------------------------------------------- reads

    def list_households(self, table: str, window: TimeWindow) -> list[str]:
        """Household ids with rows in ``window``, in natural order (a table has no order).

        One ordered request per household (no DISTINCT in PostgREST).
        """
        found = self._layout_columns(table, CONSUMPTION)
        if found is None:
            return []
        _, cols, _ = found
        key, ts = cols["key"], cols["ts"]
        ids: list[str] = []
        seen: list[str] = []
        last: str | None = None
        while True:
            q = self._client.table(table).select(_quoted(key))
            q = self._window_filter(q, ts, window, local=False)
            if last is not None:
                q = q.gt(key, last)
            q = q.order(_quoted(key)).limit(1)
            resp = self._execute(q, table, "listing households")
            if not resp.data:
                return sorted(ids, key=natural_key)  # the server's text order puts h10 before h2
            last = str(resp.data[0][key])
            if last in seen:  # a server that ignores the gt filter would loop forever
                raise DataError(f"{self._where(table)}: listing households returned {last!r} twice; the filter {key}=gt. was not applied")
            seen.append(last)
            if clean_id(last) and clean_id(last) not in ids:  # " h1" and "h1" are one home
                ids.append(clean_id(last))

    def read_consumption(self, table: str, households: Sequence[str], window: TimeWindow) -> RawRows:
        """Rows of ``households`` in ``window``, paged in (household, time) order; the count is checked."""
        found = self._layout_columns(table, CONSUMPTION)
        if found is None:
            raise DataError(f"{self._where(table)}: the table is empty")
        layout, cols, sample = found
        roles = [c.role for c in layout.columns if c.role in cols]

        def apply(q: Any) -> Any:
            q = self._window_filter(q, cols["ts"], window, local=False)
            return self._id_filter(q, cols["key"], households, sample.get(cols["key"]))

        rows, count = self._fetch_all(table, [cols[r] for r in roles], apply, [cols["key"], cols["ts"]])
        frame = pd.DataFrame.from_records([[row.get(cols[r]) for r in roles] for row in rows], columns=roles)
        frame = frame.rename(columns={"key": KEY, "ts": TS})
        ref = lambda i: f"row {i + 1} of the result (ordered by {cols['key']}, {cols['ts']})"  # noqa: E731
        where = self._where(table)
        locator = lambda minutes: TableLocator(where, cols["key"], cols["ts"], minutes, window.tz)  # noqa: E731
        return RawRows(frame, where, "utc", ref, layout, count, locator=locator)

    def read_pricing(self, table: str, node: str, market: str | None, window: TimeWindow) -> RawRows:
        """Price rows of one node (and market, where the layout has one) in ``window``, paged and counted."""
        found = self._layout_columns(table, None)
        if found is None:
            raise DataError(f"{self._where(table)}: the table is empty")
        layout, cols, sample = found
        roles = [c.role for c in layout.columns if c.role in cols]
        local = layout.time_column.kind == "local_time"

        def apply(q: Any) -> Any:
            q = self._window_filter(q, cols["ts"], window, local=local)
            q = self._id_filter(q, cols["key"], [node], sample.get(cols["key"]))
            if "market" in cols and market is not None:
                q = self._id_filter(q, cols["market"], [market], sample.get(cols["market"]))
            return q

        order = [cols[r] for r in ("market", "ts") if r in cols]
        rows, count = self._fetch_all(table, [cols[r] for r in roles], apply, order)
        if count == 0:
            what = f"node {node!r}" + (f", market {market!r}" if "market" in cols and market else "")
            raise DataError(f"{self._where(table)}: no rows for {what} ({window.describe()})")
        frame = pd.DataFrame.from_records([[row.get(cols[r]) for r in roles] for row in rows], columns=roles)
        frame = frame.rename(columns={"key": KEY, "ts": TS})
        ref = lambda i: f"row {i + 1} of the result (ordered by {', '.join(order)})"  # noqa: E731
        return RawRows(frame, self._where(table), "local" if local else "utc", ref, layout, count)

    # --------------------------------------------------------------------------------------- writes

    def ensure_table(self, layout: Layout, table: str, create: bool) -> bool:
        """PostgREST runs no DDL: check the table answers, or explain how to create it."""
        if create:
            raise DataError(
                f"{self._where(table)}: Supabase's REST API cannot create tables. Run the SQL from "
                "`wattshare import --print-ddl` in the SQL editor, or import with --to postgres and the "
                "project's connection string in WATTSHARE_PG_DSN"
            )
        self._probe_row(table)  # raises "table not found" with the cause
        return False

    def write_rows(self, layout: Layout, table: str, rows: pd.DataFrame, batch_rows: int = 500) -> WriteReport:
        """Upsert in batches (``on_conflict`` = the primary key): running it twice leaves the same rows."""
        report = WriteReport(self._where(table), rows_in=len(rows))
        pk = list(layout.primary_key)
        dup = rows.duplicated(pk, keep="first")
        if dup.any():
            report.skipped["repeats a primary key of an earlier row"] += int(dup.sum())
            rows = rows[~dup]
        names = [c.name for c in layout.columns if c.name in rows.columns]
        records = _json_records(rows[names])
        for start in range(0, len(records), batch_rows):
            batch = records[start : start + batch_rows]
            q = self._client.table(table).upsert(batch, on_conflict=",".join(pk), returning="minimal")
            self._execute(q, table, f"writing batch {report.batches + 1}")
            report.batches += 1
        return report


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: timestamps as ISO 8601 (UTC offset kept), NaN as null."""
    cols = {}
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            cols[name] = [None if pd.isna(v) else v.isoformat() for v in s]
        else:
            cols[name] = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in s.tolist()]
    return [dict(zip(cols, values)) for values in zip(*cols.values())]
