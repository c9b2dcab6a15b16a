"""The observation layout is defined once: observe, the kernel, the bounds and the docs follow it."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from energy_env import core, kernel, layout
from energy_env.env import make_community

DOCS = Path(__file__).resolve().parents[1] / "docs" / "model.md"


@pytest.mark.parametrize("horizon", [1, 6, 12])
def test_offsets_tile_the_vector(horizon):
    lay = layout.observation_layout(horizon)
    covered = np.zeros(lay.size, dtype=int)
    for name, width in lay.fields():
        covered[lay.slice(name)] += 1
        assert lay.slice(name).stop - lay.slice(name).start == width
    assert (covered == 1).all() and lay.size == core.observation_size(horizon)
    row = lay.scenario_slice()
    assert row.stop - row.start == 17 + 2 * horizon
    assert lay.in_scenario_row("import_price_usd_per_kwh") == slice(0, 1)


def test_every_field_is_written_by_both_cores_and_matches_its_bounds():
    """A field added to the layout but not computed by a core stays NaN here and fails."""
    com = make_community(num_households=4, battery={"capacity_kwh": [13.5, 0.0, 5.0, 13.5]})
    state = core.reset_state(com.params, com.data, np.array([0, 5000]), 48)
    obs = np.full((2, 4, core.observation_size(com.params.horizon)), np.nan, dtype=np.float32)
    k = kernel._pack(com.params, com.data)
    if kernel.HAVE_NUMBA:
        kernel._observe(obs, state.t, state.start, state.end, state.soc_kwh, state.throughput_kwh, state.last_price_usd_per_kwh,
                        state.last_sdr, k.scal, k.hp, k.prices, k.load, k.pv, k.load_fc, k.pv_fc, k.scen_obs, k.hh_obs, k.offsets, None)
        assert np.isfinite(obs).all()
        np.testing.assert_array_equal(obs, core.observe(state, com.params, com.data))
    low, high = core.observation_bounds(com.params, com.data)
    numpy_obs = core.observe(state, com.params, com.data)
    assert ((numpy_obs >= low) & (numpy_obs <= high)).all()


def test_each_field_holds_its_value():
    com = make_community(num_households=3)
    lay = layout.observation_layout(com.params.horizon)
    state = core.reset_state(com.params, com.data, np.array([100]), 48)
    obs = core.observe(state, com.params, com.data)[0]
    t = 100
    np.testing.assert_array_equal(obs[:, lay.at("load_kwh")], com.data.load_kwh[t].astype(np.float32))
    np.testing.assert_array_equal(obs[:, lay.slice("pv_forecast_kwh")], com.data.pv_fc_kwh[t])
    np.testing.assert_array_equal(obs[:, lay.at("import_price_usd_per_kwh")], np.float32(com.data.import_usd_per_kwh[t]))
    assert (obs[:, lay.at("episode_progress")] == 0).all()
    np.testing.assert_array_equal(obs[:, lay.at("is_peak")], com.data.time_features[t, -1])


def test_docs_table_is_the_layout():
    text = DOCS.read_text()
    assert layout.markdown_table(6) in text, "docs/model.md's observation table: paste energy_env.layout.markdown_table()"


def test_info_rows_of_the_kernel_are_the_info_keys():
    assert kernel.ROWS[: kernel.NUM_INFO_ROWS] == layout.INFO_KEYS
    assert len(set(kernel.ROWS)) == len(kernel.ROWS)


def test_kernel_offsets_follow_the_layout():
    """The kernel's fixed field positions map to the layout's offsets, whatever fields the layout adds."""
    for horizon in (1, 6, 12):
        lay = layout.observation_layout(horizon)
        off = kernel.kernel_offsets(horizon)
        for k, name in enumerate(kernel._KERNEL_FIELDS):
            blocks = {"scenario": lay.scenario_slice().start, "household_table": lay.household_table_slice().start}
            assert off[k] == blocks.get(name, lay.offsets[layout.FIELD_INDEX.get(name, 0)])
    assert kernel.ROWS == kernel._KERNEL_ROWS


def test_day_ahead_fields_see_the_evening_from_noon():
    from energy_env.precompute import day_ahead_max

    price = np.array([1.0, 3.0, 2.0, 3.0, 0.5])
    top, hours = day_ahead_max(price, steps=2)
    np.testing.assert_array_equal(top, [3.0, 3.0, 3.0, 0.5, 0.5])  # past the end the last price repeats
    np.testing.assert_array_equal(hours, [0.5, 1.0, 0.5, 0.5, 0.5])  # the first interval with the max
    com = make_community(num_households=2)
    lay = layout.observation_layout(com.params.horizon)
    noon = 24 + 48 * 200  # 12:00 of a summer day, 30-minute intervals
    state = core.reset_state(com.params, com.data, np.array([noon]), 48)
    obs = core.observe(state, com.params, com.data)[0, 0]
    ahead = com.data.export_usd_per_kwh[noon + 1: noon + 49]
    assert obs[lay.at("export_price_max_next_day_usd_per_kwh")] == np.float32(ahead.max())
    assert obs[lay.at("hours_to_export_price_max")] == 0.5 * (ahead.argmax() + 1)
    assert obs[lay.at("import_price_max_next_day_usd_per_kwh")] == np.float32(com.data.import_usd_per_kwh[noon + 1: noon + 49].max())


def test_yesterdays_next_hours():
    from energy_env.precompute import yesterday_next_hours_kwh

    x = np.arange(96 * 2, dtype=np.float64).reshape(96, 2)  # two days of two homes
    out = yesterday_next_hours_kwh(x, hours=1.0)  # 2 intervals
    t = 60  # yesterday's 12:30-13:30 are intervals 13 and 14
    np.testing.assert_array_equal(out[t], x[13] + x[14])
    np.testing.assert_array_equal(out[0], x[1] + x[2])  # the first day stands in for its yesterday
    com = make_community(num_households=2)
    lay = layout.observation_layout(com.params.horizon)
    obs = core.observe(core.reset_state(com.params, com.data, np.array([500]), 48), com.params, com.data)[0]
    np.testing.assert_allclose(obs[:, lay.at("pv_next_12h_yesterday_kwh")], com.data.pv_kwh[453:477].sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(obs[:, lay.at("load_next_12h_yesterday_kwh")], com.data.load_kwh[453:477].sum(axis=0), rtol=1e-5)


@pytest.mark.parametrize("blocks", [1, 8, 48])
def test_day_ahead_fields_are_the_seven_day_means_of_the_next_24_hours(blocks):
    from energy_env.config import INTERVALS_PER_DAY as DAY

    com = make_community(num_households=3, forecast={"day_ahead_blocks": blocks})
    lay = core.layout_of(com.params)
    assert lay.size == core.observation_size(6) + 2 * blocks
    assert lay.fields()[-2:] == [("load_next_day_mean_kwh", blocks), ("pv_next_day_mean_kwh", blocks)]
    last = com.dataset.num_intervals - 1
    t = np.array([3 * DAY + 17, 200 * DAY, last - 4])  # early days average fewer days; the last runs past the end
    state = core.reset_state(com.params, com.data, np.zeros(3, dtype=int), 1)
    obs = core.observe(dataclasses.replace(state, t=t), com.params, com.data)
    width = DAY // blocks
    for b, tb in enumerate(t):
        for x, name in ((com.dataset.load_kwh, "load_next_day_mean_kwh"), (com.dataset.pv_kwh, "pv_next_day_mean_kwh")):
            want = np.zeros((blocks, 3))
            for j in range(blocks):
                for k in range(tb + 1 + j * width, tb + 1 + (j + 1) * width):
                    k = min(k, last)  # past the data set's end its last interval repeats
                    days = [k - d * DAY for d in range(1, 8) if k - d * DAY >= 0]
                    assert days and max(days) <= tb  # known at t: no later interval enters
                    want[j] += x[days].mean(axis=0)
            np.testing.assert_allclose(obs[b, :, lay.slice(name)], want.T, rtol=1e-5, atol=1e-6)
    low, high = core.observation_bounds(com.params, com.data)
    ahead = np.r_[lay.slice("load_next_day_mean_kwh"), lay.slice("pv_next_day_mean_kwh")]
    assert np.all(obs[..., ahead] >= low[ahead]) and np.all(obs[..., ahead] <= high[ahead])


def test_day_ahead_blocks_must_divide_a_day():
    from energy_env.config import ConfigError, make_config

    with pytest.raises(ConfigError, match="day_ahead_blocks"):
        make_config(forecast={"day_ahead_blocks": 5})
    assert core.layout_of(make_community(num_households=2).params).size == core.observation_size(6)  # 0: the layout as before
