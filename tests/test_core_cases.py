"""Hand-made cases: curtailment at the export limit, the import limit, NEM 3 evenings, CityLearn homes."""

import numpy as np
import pandas as pd
import pytest

from energy_env import core
from energy_env.community import build_community
from energy_env.config import make_config
from energy_env.data.dataset import DataError, Dataset

from conftest import CITYLEARN, require_shared


def one_day(load, pv, date="2025-03-03"):
    load = np.asarray(load, dtype=float).reshape(48, -1)
    pv = np.asarray(pv, dtype=float).reshape(48, -1)
    n = load.shape[1]
    return Dataset(
        name="hand-made", timestamps=pd.date_range(date, periods=48, freq="30min"), load_kwh=load, pv_kwh=pv,
        household_ids=tuple(f"h{i}" for i in range(n)), pv_capacity_kw=np.full(n, 5.0),
    )


def step_once(ds, action, t=24, **cfg):
    com = build_community(make_config(num_households=ds.num_households, **cfg), dataset=ds)
    state = core.reset_state(com.params, com.data, np.array([t]), 2)
    return core.transition(state, np.array([action], dtype=float), com.params, com.data)[1]


def test_export_limit_curtails_pv_after_the_battery_charges():
    load, pv = np.full((48, 1), 0.5), np.zeros((48, 1))
    pv[24] = 8.0  # 7.5 kWh surplus: 2.5 into the battery, 4 exported, 1 curtailed
    res = step_once(one_day(load, pv), [1.0])
    assert res.battery_ac_kwh[0, 0] == pytest.approx(2.5)
    assert res.grid_export_kwh[0, 0] == pytest.approx(4.0)
    assert res.pv_curtailed_kwh[0, 0] == pytest.approx(1.0)
    idle = step_once(one_day(load, pv), [0.0])
    assert idle.pv_curtailed_kwh[0, 0] == pytest.approx(3.5)


def test_discharge_never_pushes_export_past_the_limit():
    load, pv = np.full((48, 1), 0.5), np.zeros((48, 1))
    pv[24] = 3.5  # 3 kWh surplus leaves 1 kWh of export room
    res = step_once(one_day(load, pv), [-1.0])
    assert res.battery_ac_kwh[0, 0] == pytest.approx(-1.0)
    assert res.grid_export_kwh[0, 0] == pytest.approx(4.0)
    assert res.action_clipped_kwh[0, 0] == pytest.approx(1.5)


def test_load_above_the_import_limit_is_rejected_when_building():
    load = np.full((48, 2), 1.0)
    load[30, 1] = 10.5
    with pytest.raises(DataError, match=r"household h1 needs 10.500 kWh .* \(interval 30\), above its grid.import_limit_kwh of 10 kWh") as err:
        build_community(make_config(num_households=2), dataset=one_day(load, np.zeros((48, 2))))
    assert "grid.over_limit: unserved" in str(err.value)


def test_per_home_limits_serve_a_home_with_a_larger_service():
    load = np.full((48, 2), 1.0)
    load[30, 1] = 10.5
    pv = np.zeros((48, 2))
    pv[24] = 8.0
    ds = one_day(load, pv)
    com = build_community(make_config(num_households=2, grid={"import_limit_kwh": [10.0, 12.0], "export_limit_kwh": [4.0, 2.0]}), dataset=ds)
    np.testing.assert_array_equal(com.params.import_limit_kwh, [10.0, 12.0])
    np.testing.assert_array_equal(com.data.load_kwh, load)  # nothing shed
    res = step_once(ds, [0.0, 0.0], grid={"import_limit_kwh": [10.0, 12.0], "export_limit_kwh": [4.0, 2.0]})
    assert res.grid_export_kwh[0].tolist() == pytest.approx([4.0, 2.0])  # each home's own export limit
    assert res.pv_curtailed_kwh[0].tolist() == pytest.approx([3.0, 5.0])


def test_unserved_load_is_shed_and_counted_when_opted_in():
    load = np.full((48, 2), 1.0)
    load[30, 1] = 10.5
    load[31, 1] = 12.0
    ds = one_day(load, np.zeros((48, 2)))
    com = build_community(make_config(num_households=2, grid={"over_limit": "unserved"}), dataset=ds)
    assert com.data.unserved_kwh[30, 1] == pytest.approx(0.5) and com.data.unserved_kwh[31, 1] == pytest.approx(2.0)
    assert com.data.unserved_kwh.sum() == pytest.approx(2.5)
    np.testing.assert_array_equal(com.data.load_kwh + com.data.unserved_kwh, load)  # served + unserved = measured
    np.testing.assert_array_equal(com.data.load_kwh[:, 0], load[:, 0])  # the other home is unchanged
    res = step_once(ds, [0.0, -1.0], t=30, grid={"over_limit": "unserved"})
    assert res.unserved_kwh[0].tolist() == [0.0, 0.5]
    assert res.grid_import_kwh[0, 1] <= 10.0 and res.constraint_violation_kwh.sum() == 0


def test_nem3_evening_market_does_not_clear():
    """September weekday 19:00, NBT 2024 vintage/calendar: export credit 3.90 $/kWh > import price."""
    load = np.tile([2.0, 0.2], (48, 1))
    pv = np.tile([0.0, 3.0], (48, 1))  # home 1 exports 2.8 kWh at 19:00 (synthetic, to force a seller)
    ds = one_day(load, pv, date="2024-09-10")
    res = step_once(ds, [0.0, 0.0], t=38, tariff={"nbt_vintage": 2024, "nbt_calendar_year": 2024})
    assert res.export_price_usd_per_kwh[0] == pytest.approx(3.90338)
    assert not res.market_cleared[0]
    assert res.p2p_sold_kwh.sum() == 0 and res.grid_export_kwh[0, 1] == pytest.approx(2.8)
    noon = step_once(ds, [0.0, 0.0], t=24, tariff={"nbt_vintage": 2024, "nbt_calendar_year": 2024})
    assert noon.market_cleared[0] and noon.p2p_sold_kwh[0, 1] > 0


def test_citylearn_homes_run_in_the_env():
    path = require_shared(CITYLEARN)
    import energy_env

    env = energy_env.parallel_env(num_households=14, data={"source": "citylearn", "path": str(path)})
    assert env.data.dataset.num_intervals == 17520
    env.reset(options={"day": 3, "split": "test"})
    while env.agents:
        _, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert all(i["constraint_violation_kwh"] == 0 for i in infos.values())
