"""The Supabase path against an HTTP-level fake of PostgREST (respx): paging, 401, missing table, network.

The fake answers as PostgREST documents it: ``offset`` / ``limit`` / ``order`` / ``select`` and
``col=op.value`` filters, a server-side cap of ``max_rows`` rows per response (Supabase's default
is 1,000), ``Content-Range: first-last/total`` with ``Prefer: count=exact`` (206 when partial),
``{"code", "message", "details", "hint"}`` error bodies, and upserts with ``on_conflict``.
"""

from __future__ import annotations

import json
import re

import httpx
import numpy as np
import pandas as pd
import pytest

respx = pytest.importorskip("respx", reason="the Supabase tests need respx (pip install respx)")
pytest.importorskip("supabase", reason="the Supabase tests need the supabase client")

from energy_env.data.caiso import PriceSourceOptions, load_price_series  # noqa: E402
from energy_env.data.dataset import DataError  # noqa: E402
from energy_env.config import DatabaseConfig  # noqa: E402
from energy_env.data.sources import ExternalDataOptions, load_consumption  # noqa: E402
from energy_env.data.writing import dataset_to_rows  # noqa: E402
from energy_env.data.supabase_source import SupabaseSource, id_pattern  # noqa: E402
from energy_env.data.synthetic import generate_synthetic  # noqa: E402
from energy_env.data.tables import CONSUMPTION  # noqa: E402
from train.import_data import first_days  # noqa: E402

URL = "https://fake-project.supabase.co"
KEY = "sb-secret-KEY-0123456789"


class FakePostgrest:
    """Tables of JSON rows behind PostgREST's documented request / response shapes."""

    def __init__(self, tables: dict[str, list[dict]], key: str = KEY, max_rows: int = 1000, pk: dict | None = None):
        self.tables = tables
        self.key = key
        self.max_rows = max_rows
        self.pk = pk or {}
        self.requests: list[httpx.Request] = []
        self.grow_after_first_page: str | None = None

    @staticmethod
    def _error(status: int, code: str | None, message: str, hint: str | None = None) -> httpx.Response:
        return httpx.Response(status, json={"code": code, "details": None, "hint": hint, "message": message})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("apikey") != self.key:
            return httpx.Response(401, json={"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."})
        table = request.url.path.removeprefix("/rest/v1/")
        if table not in self.tables:
            return self._error(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache",
                               f"Perhaps you meant the table 'public.{next(iter(self.tables))}'")
        if request.method == "POST":
            return self._upsert(table, request)
        return self._select(table, request)

    def _select(self, table: str, request: httpx.Request) -> httpx.Response:
        rows = self.tables[table]
        params = request.url.params
        cols = [c.strip('"') for c in params.get("select", "*").split(",")]
        known = set(rows[0]) if rows else set()
        for c in cols:
            if c != "*" and rows and c not in known:
                return self._error(400, "42703", f"column {table}.{c} does not exist")
        for name, value in params.multi_items():
            if name in ("select", "order", "limit", "offset", "columns", "on_conflict"):
                continue
            op, _, arg = value.partition(".")
            rows = [r for r in rows if self._match(r.get(name), op, arg)]
        for part in reversed(params.get("order", "").split(",") if params.get("order") else []):
            col = part.rsplit(".", 1)[0].strip('"')
            rows = sorted(rows, key=lambda r: self._key(r.get(col)))
        total = len(rows)
        offset = int(params.get("offset", 0))
        limit = min(int(params.get("limit", self.max_rows)), self.max_rows)
        page = rows[offset : offset + limit]
        if cols != ["*"]:
            page = [{c: r.get(c) for c in cols} for r in page]
        headers = {}
        if "count=exact" in request.headers.get("prefer", ""):
            headers["Content-Range"] = f"{offset}-{offset + len(page) - 1}/{total}" if page else f"*/{total}"
            if self.grow_after_first_page == table:  # someone writes while we page
                self.tables[table] = self.tables[table] + [dict(self.tables[table][0], interval_start_utc="2030-01-01T00:00:00+00:00")]
                self.grow_after_first_page = None
        status = 206 if headers and len(page) < total else 200
        return httpx.Response(status, json=page, headers=headers)

    def _upsert(self, table: str, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        keys = request.url.params.get("on_conflict", "").split(",")
        index = {tuple(r[k] for k in keys): i for i, r in enumerate(self.tables[table])}
        for row in body:
            k = tuple(row[c] for c in keys)
            if k in index:
                self.tables[table][index[k]] = row
            else:
                index[k] = len(self.tables[table])
                self.tables[table].append(row)
        return httpx.Response(201)

    @staticmethod
    def _key(v):
        try:
            return (0, pd.Timestamp(v).value) if isinstance(v, str) and v[:2].isdigit() else (1, str(v))
        except ValueError:
            return (1, str(v))

    def _match(self, value, op: str, arg: str) -> bool:
        if op == "in":
            return str(value) in [a.strip('"') for a in arg.strip("()").split(",")]
        if op == "match":  # PostgreSQL's ~ (the patterns the source sends mean the same in Python's re)
            return value is not None and re.search(arg, str(value)) is not None
        a, b = self._key(value), self._key(arg)
        return {"eq": a == b, "gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def _consumption_rows(households: int = 3, days: int = 7) -> tuple[list[dict], object]:
    ds = first_days(generate_synthetic(households, 2025, seed=2), days)
    rows, _ = dataset_to_rows(ds)
    rows["interval_start_utc"] = rows["interval_start_utc"].map(lambda t: t.isoformat())
    return rows.to_dict("records"), ds


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", URL)
    monkeypatch.setenv("SUPABASE_KEY", KEY)
    rows, ds = _consumption_rows()
    server = FakePostgrest({"consumption": rows, "pricing": []})
    server.dataset = ds
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="fake-project.supabase.co").mock(side_effect=server)
        yield server


def _opts(page_rows: int = 1000, **kw) -> ExternalDataOptions:
    return ExternalDataOptions(source="supabase", database=DatabaseConfig(env_file=None, page_rows=page_rows), **kw)


def test_pages_through_every_row_with_content_range(fake):
    ds, report = load_consumption(_opts())
    assert report.rows_read == report.expected_rows == 3 * 7 * 48 == 1008
    np.testing.assert_allclose(ds.load_kwh, fake.dataset.load_kwh, atol=1e-12)
    assert ds.household_ids == fake.dataset.household_ids
    slot = ds.timestamps[37]  # naive local; 8 (PDT) or 7 hours to UTC
    utc = slot.tz_localize("America/Los_Angeles").tz_convert("UTC")
    assert ds.locate(1, 37) == (
        f"supabase fake-project.supabase.co table public.consumption: the row of household 'household_1' with "
        f"interval_start_utc = {utc:%Y-%m-%dT%H:%M}Z (household household_1, {slot:%Y-%m-%d %H:%M} local)"
    )
    assert ds.source.startswith("supabase fake-project.supabase.co table public.consumption")
    pages = [r for r in fake.requests if "offset" in r.url.params]
    assert [int(r.url.params["offset"]) for r in pages] == [0, 1000]
    assert all(r.url.params["order"] == "household_id.asc,interval_start_utc.asc" for r in pages)  # stable order


def test_server_cap_below_the_page_size_still_reads_everything(fake):
    fake.max_rows = 300  # the server returns fewer rows than asked: advance by what came back
    _, report = load_consumption(_opts(page_rows=1000))
    assert report.rows_read == 1008
    offsets = [int(r.url.params["offset"]) for r in fake.requests if "offset" in r.url.params]
    assert offsets == [0, 300, 600, 900]


def test_filters_go_to_the_server(fake):
    _, report = load_consumption(_opts(households=("household_1",)))
    assert report.rows_read == 7 * 48
    page = next(r for r in fake.requests if "offset" in r.url.params)
    assert page.url.params["household_id"] == "match." + id_pattern(["household_1"])


def test_a_table_growing_while_paging_is_detected(fake):
    fake.grow_after_first_page = "consumption"
    with pytest.raises(DataError, match=r"table public.consumption: the row count changed from 1008 to 1009 while paging"):
        load_consumption(_opts(households=("household_0", "household_1", "household_2")))
    assert [int(r.url.params["offset"]) for r in fake.requests if "offset" in r.url.params] == [0, 1000]


def test_bad_key_gives_a_clear_401(fake, monkeypatch):
    monkeypatch.setenv("SUPABASE_KEY", "wrong-key-9876")
    with pytest.raises(DataError, match=r"table public.consumption: .*authentication failed \(HTTP 401\).*check SUPABASE_KEY") as err:
        load_consumption(_opts())
    assert "wrong-key-9876" not in str(err.value)


def test_missing_table_is_named(fake):
    with pytest.raises(DataError, match=r"table public.consumptoin: .*table not found \(HTTP 404\) \(PostgREST PGRST205: Could not find the table 'public.consumptoin'"):
        load_consumption(_opts(table="consumptoin"))


def test_network_error_is_named_and_the_key_never_shown(monkeypatch):
    with respx.mock() as mock:
        mock.route(host="fake-project.supabase.co").mock(side_effect=httpx.ConnectError(f"connection refused (key {KEY})"))
        src = SupabaseSource(URL, KEY, retry=False)
        assert KEY not in repr(src)
        with pytest.raises(DataError, match=r"table public.consumption: reading the columns failed: network error \(ConnectError") as err:
            load_consumption(_opts(), source=src)
    assert KEY not in str(err.value) and "***" in str(err.value)


def test_empty_table_and_missing_column(fake):
    fake.tables["empty"] = []
    with pytest.raises(DataError, match="table 'empty' has no rows"):
        load_consumption(_opts(table="empty"))
    fake.tables["partial"] = [{"household_id": "h", "interval_start_utc": "2025-01-01T08:00:00+00:00", "load_kwh": 1.0}]
    with pytest.raises(DataError, match=r"table public.partial: missing column\(s\) 'pv_kwh'"):
        load_consumption(_opts(table="partial"))


def test_wrong_value_types_are_rejected_row_by_row(fake):
    rows = fake.tables["consumption"]
    rows[5] = dict(rows[5], load_kwh="lots")
    rows[6] = dict(rows[6], load_kwh=None)
    _, report = load_consumption(_opts(gap_fill="interpolate"))
    assert report.rejected == {"non-numeric load_kwh": 1, "missing load_kwh": 1}
    assert report.rows_read == report.rows_kept + 2


def test_missing_credentials_name_the_variables(monkeypatch):
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    with pytest.raises(DataError, match="no project URL: set SUPABASE_URL"):
        SupabaseSource.from_env(env_file=None)


def test_pricing_in_the_team_layout(fake):
    hours = pd.date_range("2024-10-01 07:00", periods=48 * 30, freq="h", tz="UTC")  # 1,440 rows per node
    for node, scale in (("DLAP_PGAE-APND", 1.0), ("OTHER", 2.0)):
        fake.tables["pricing"] += [
            {"INTERVALSTARTTIME_GMT": t.isoformat(), "NODE": node, "Price KWH": scale * (0.05 + 0.01 * (i % 24))}
            for i, t in enumerate(hours)
        ]
    series = load_price_series(PriceSourceOptions(source="supabase", database=DatabaseConfig(env_file=None)))
    assert series.report.rows_read == series.report.expected_rows == 1440
    assert series.market is None and len(series.timestamps) == 60 * 48
    page = next(r for r in fake.requests if r.url.path.endswith("pricing") and "offset" in r.url.params)
    assert page.url.params["NODE"] == "match." + id_pattern(["DLAP_PGAE-APND"])
    assert page.url.params["select"] == 'INTERVALSTARTTIME_GMT,NODE,"Price KWH"'


def test_upserts_in_batches_are_idempotent(fake):
    src = SupabaseSource(URL, KEY, retry=False)
    rows, _ = dataset_to_rows(first_days(generate_synthetic(2, 2025, seed=5), 2))
    fake.tables["consumption"] = []
    report = src.write_rows(CONSUMPTION, "consumption", rows, batch_rows=50)
    assert report.batches == 4 and len(fake.tables["consumption"]) == 192
    first = [dict(r) for r in fake.tables["consumption"]]
    src.write_rows(CONSUMPTION, "consumption", rows, batch_rows=50)
    assert fake.tables["consumption"] == first
    post = next(r for r in fake.requests if r.method == "POST")
    assert post.url.params["on_conflict"] == "household_id,interval_start_utc"
    assert "resolution=merge-duplicates" in post.headers["prefer"]
    with pytest.raises(DataError, match="REST API cannot create tables"):
        src.ensure_table(CONSUMPTION, "consumption", create=True)


def test_ids_with_surrounding_whitespace_are_one_home(fake):
    clean, _ = load_consumption(_opts())
    rows = fake.tables["consumption"]
    for i, row in enumerate(rows):
        if row["household_id"] == "household_0":
            row["household_id"] = " household_0" if i % 2 else "household_0\t"
    ds, report = load_consumption(_opts())  # listed: one home per stripped id
    assert ds.household_ids == clean.household_ids and report.rows_rejected == 0
    np.testing.assert_array_equal(ds.load_kwh, clean.load_kwh)
    ds, _ = load_consumption(_opts(households=("household_0 ",)))  # filtered on the server, whitespace-tolerant
    np.testing.assert_array_equal(ds.load_kwh[:, 0], clean.load_kwh[:, 0])
    # numeric ids: PostgREST's regex operator would fail on an integer column, so those use in.()
    fake.tables["ints"] = [dict(r, household_id=int(r["household_id"].strip()[-1]) + 1) for r in rows]
    ds, _ = load_consumption(_opts(table="ints", households=("2",)))
    np.testing.assert_array_equal(ds.load_kwh[:, 0], clean.load_kwh[:, 1])
    page = [r for r in fake.requests if r.url.path.endswith("/ints") and "offset" in r.url.params][-1]
    assert page.url.params["household_id"] == "in.(2)"


URL_WITH_USER = "https://wuser:Url5ecret@fake-project.supabase.co"


def test_credentials_in_supabase_url_never_show(fake, monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", URL_WITH_USER)
    monkeypatch.setenv("SUPABASE_KEY", "wrong-key-9876")
    with pytest.raises(DataError, match=r"supabase fake-project.supabase.co table public.consumption: .*authentication failed") as err:
        load_consumption(_opts())
    assert "Url5ecret" not in str(err.value) and "wrong-key-9876" not in str(err.value)


def test_credentials_in_supabase_url_never_show_in_a_network_error():
    with respx.mock() as mock:
        mock.route(host="fake-project.supabase.co").mock(side_effect=httpx.ConnectError(f"refused: {URL_WITH_USER}/rest/v1"))
        src = SupabaseSource(URL_WITH_USER, KEY, retry=False)
        assert "Url5ecret" not in repr(src) + src.describe() and src.host == "fake-project.supabase.co"
        with pytest.raises(DataError, match=r"network error .*check SUPABASE_URL \(https://\*\*\*@fake-project.supabase.co\)") as err:
            load_consumption(_opts(), source=src)
    assert "Url5ecret" not in str(err.value) and "wuser" not in str(err.value) and KEY not in str(err.value)
