"""Market clearing: hand-computed SDR prices, pro-rata matching, conservation, no-clear cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from energy_env import market

PB, PS = 0.5, 0.095  # Ps / 0.95 = 0.1 exactly


@pytest.mark.parametrize("sdr, expected", [(0.0, 0.5), (0.5, 0.05 / 0.3), (1.0, 0.1), (2.0, 0.1)])
def test_sdr_price_hand_computed(sdr, expected):
    # P = Ps' Pb / ((Pb - Ps') SDR + Ps') with Ps' = 0.1: 0.05 / (0.4 SDR + 0.1)
    assert market.sdr_price(np.array(sdr), np.array(PB), np.array(PS / 0.95)) == pytest.approx(expected, rel=1e-12)


def test_clear_one_buyer_one_seller_at_sdr_half():
    seller_sends = 0.5 / 0.95  # delivers 0.5 kWh
    c = market.clear(np.array([[1.0, -seller_sends]]), PB, PS, "sdr", 0.05)
    assert c.sdr[0] == pytest.approx(0.5)
    assert c.price_usd_per_kwh[0] == pytest.approx(1 / 6)
    np.testing.assert_allclose(c.p2p_bought_kwh[0], [0.5, 0.0])
    np.testing.assert_allclose(c.p2p_sold_kwh[0], [0.0, seller_sends])
    np.testing.assert_allclose(c.grid_import_kwh[0], [0.5, 0.0])
    np.testing.assert_allclose(c.grid_export_kwh[0], [0.0, 0.0], atol=1e-15)
    assert c.p2p_paid_usd.sum() == pytest.approx(c.p2p_revenue_usd.sum(), rel=1e-14)
    # the seller earns more per kWh sent than exporting, the buyer pays less than importing
    assert c.p2p_revenue_usd[0, 1] / seller_sends > PS
    assert c.price_usd_per_kwh[0] < PB


def test_clear_surplus_market_all_demand_met_pro_rata():
    c = market.clear(np.array([[1.0, 3.0, -4.0, -6.0]]), PB, PS, "sdr", 0.05)
    assert c.sdr[0] == pytest.approx(0.95 * 10 / 4)
    assert c.price_usd_per_kwh[0] == pytest.approx(PS / 0.95)
    np.testing.assert_allclose(c.p2p_bought_kwh[0], [1.0, 3.0, 0, 0])
    sent = 4.0 / 0.95
    np.testing.assert_allclose(c.p2p_sold_kwh[0], [0, 0, 0.4 * sent, 0.6 * sent])
    np.testing.assert_allclose(c.grid_export_kwh[0], [0, 0, 4 - 0.4 * sent, 6 - 0.6 * sent])


def test_no_clearing_when_export_value_exceeds_import_price():
    # NEM 3 summer evening: export credit 3.9 $/kWh against 0.61 to import.
    c = market.clear(np.array([[2.0, -3.0]]), 0.60729, 3.90338, "sdr", 0.05)
    assert not c.cleared[0]
    np.testing.assert_array_equal(c.p2p_bought_kwh, 0.0)
    np.testing.assert_array_equal(c.p2p_sold_kwh, 0.0)
    np.testing.assert_allclose(c.grid_import_kwh[0], [2.0, 0.0])
    np.testing.assert_allclose(c.grid_export_kwh[0], [0.0, 3.0])


def test_break_even_boundary_does_not_clear():
    c = market.clear(np.array([[2.0, -3.0]]), 0.5, 0.5 * 0.95, "sdr", 0.05)
    assert not c.cleared[0]


def test_one_sided_markets_do_not_clear():
    for net in ([1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]):
        c = market.clear(np.array([net]), PB, PS, "sdr", 0.05)
        assert not c.cleared[0]
        assert c.p2p_sold_kwh.sum() == 0 and c.p2p_bought_kwh.sum() == 0


def test_sdr_edge_values():
    _, _, sdr = market.supply_demand(np.array([[1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]]), 0.05)
    assert sdr[0] == 0.0 and np.isinf(sdr[1]) and sdr[2] == 0.0


def test_mid_market_price_is_half_way():
    c = market.clear(np.array([[1.0, -0.5]]), PB, PS, "mid_market", 0.05)
    assert c.price_usd_per_kwh[0] == pytest.approx((PB + PS / 0.95) / 2)


def test_bill_sharing_gives_shared_energy_for_free():
    c = market.clear(np.array([[1.0, -0.5]]), PB, PS, "bill_sharing", 0.05)
    assert c.price_usd_per_kwh[0] == 0.0
    # buyers pay only for the community's import: Pb * (D - S') / D per kWh asked
    assert c.grid_import_kwh[0, 0] * PB == pytest.approx(PB * (1.0 - 0.475))


def test_mechanism_none_never_trades():
    c = market.clear(np.array([[1.0, -0.5]]), PB, PS, "none", 0.05)
    assert not c.cleared.any() and c.p2p_bought_kwh.sum() == 0


def test_unknown_mechanism():
    with pytest.raises(ValueError, match="unknown market mechanism 'auction'"):
        market.clear(np.array([[1.0]]), PB, PS, "auction", 0.05)


@settings(max_examples=200, deadline=None)
@given(
    net=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)), elements=st.floats(-10, 10)),
    pb=st.floats(0.05, 1.0),
    ps=st.floats(0.0, 4.0),
    mechanism=st.sampled_from(["sdr", "mid_market", "bill_sharing", "none"]),
)
def test_clearing_invariants(net, pb, ps, mechanism):
    c = market.clear(net, pb, ps, mechanism, 0.05)
    asked, offered = np.maximum(net, 0), np.maximum(-net, 0)
    # every flow is non-negative and each home's balance holds: n = import - export + bought - sold
    for arr in (c.p2p_bought_kwh, c.p2p_sold_kwh, c.grid_import_kwh, c.grid_export_kwh):
        assert (arr >= -1e-12).all()
    np.testing.assert_allclose(c.grid_import_kwh - c.grid_export_kwh + c.p2p_bought_kwh - c.p2p_sold_kwh, net, atol=1e-9)
    assert (c.p2p_bought_kwh <= asked + 1e-12).all() and (c.p2p_sold_kwh <= offered + 1e-12).all()
    # energy: received = 95% of sent; money: paid = received by sellers
    np.testing.assert_allclose(c.p2p_bought_kwh.sum(-1), 0.95 * c.p2p_sold_kwh.sum(-1), atol=1e-9)
    np.testing.assert_allclose(c.p2p_paid_usd.sum(-1), c.p2p_revenue_usd.sum(-1), atol=1e-9)
    # one side is always fully served when the market clears
    full_demand = np.isclose(c.p2p_bought_kwh.sum(-1), asked.sum(-1))
    full_supply = np.isclose(c.p2p_sold_kwh.sum(-1), offered.sum(-1))
    assert (full_demand | full_supply | ~c.cleared).all()
    if mechanism in ("sdr", "mid_market"):
        p = c.price_usd_per_kwh[c.cleared]
        assert (p >= ps / 0.95 - 1e-12).all() and (p <= pb + 1e-12).all()
    if pb <= ps / 0.95:
        assert not c.cleared.any()
