"""The double auction: hand-computed clearings, limit prices, and invariants under random and adversarial orders."""

import numpy as np
import pytest

from energy_env.auction import double_auction, order_limits, truthful_limits
from energy_env.market import clear

KEEP = 0.95


def sell(delivered_kwh):
    """Net position of a seller delivering ``delivered_kwh`` (it sends more: the loss)."""
    return -delivered_kwh / KEEP


def run(net, limits, k=0.5):
    return double_auction(np.array([net], float), np.array([limits], float), loss=0.05, k=k)


def test_no_crossing():
    r = run([1.0, sell(1.0)], [0.30, 0.35])
    assert not r.cleared[0] and np.isnan(r.price_usd_per_kwh[0]) and r.volume_kwh[0] == 0.0
    assert np.all(r.bought_kwh == 0.0) and np.all(r.sold_kwh == 0.0)


def test_exact_crossing_and_the_k_rule():
    for k, price in ((0.5, 0.35), (0.0, 0.30), (1.0, 0.40)):
        r = run([1.0, sell(1.0)], [0.40, 0.30], k=k)
        np.testing.assert_allclose(r.bought_kwh[0], [1.0, 0.0])
        np.testing.assert_allclose(r.sold_kwh[0], [0.0, 1.0 / KEEP])
        assert r.price_usd_per_kwh[0] == pytest.approx(price) and r.volume_kwh[0] == pytest.approx(1.0)


def test_ties_at_the_margin_share_pro_rata():
    r = run([1.0, 3.0, sell(2.0)], [0.40, 0.40, 0.30])
    np.testing.assert_allclose(r.bought_kwh[0], [0.5, 1.5, 0.0])  # 2 kWh over 4 asked, pro rata
    assert r.price_usd_per_kwh[0] == pytest.approx(0.35)


def test_priority_by_price_then_the_margin():
    # sellers deliver 1 @ 0.20, 1 @ 0.30, 1 @ 0.50; buyers ask 1.5 @ 0.45 and 1 @ 0.25:
    # Q = 1.5 (the curves cross between 0.30 and 0.45), the 0.30 seller is marginal.
    r = run([sell(1.0), sell(1.0), sell(1.0), 1.5, 1.0], [0.20, 0.30, 0.50, 0.45, 0.25])
    np.testing.assert_allclose(r.bought_kwh[0], [0, 0, 0, 1.5, 0.0])
    np.testing.assert_allclose(r.sold_kwh[0] * KEEP, [1.0, 0.5, 0.0, 0, 0])
    assert r.price_usd_per_kwh[0] == pytest.approx(0.5 * (0.45 + 0.30))


def test_one_side_empty():
    for net in ([1.0, 2.0, 0.0], [sell(1.0), sell(2.0), 0.0]):
        r = run(net, [0.1, 0.2, 0.3])
        assert not r.cleared[0] and np.all(r.bought_kwh == 0) and np.all(r.sold_kwh == 0)


def test_limits_above_the_grid_price_clear_among_themselves():
    # Raw limits far above any grid price still clear (the auction knows no grid); the env's
    # order_limits never produces them (below).
    r = run([1.0, sell(1.0)], [0.90, 0.80])
    assert r.price_usd_per_kwh[0] == pytest.approx(0.85) and r.volume_kwh[0] == pytest.approx(1.0)


def test_order_limits_stay_between_the_grid_alternatives():
    rng = np.random.default_rng(0)
    net = rng.normal(size=(50, 20))
    imp, exp = rng.uniform(0.2, 0.6, 50), rng.uniform(0.0, 0.8, 50)  # some intervals with s > Pb (NEM 3 evenings)
    s = exp / KEEP
    for a in (-1.0, -0.3, 0.4, 1.0):
        lim = order_limits(np.full(net.shape, a), net, imp, exp, 0.05)
        buyers, sellers = net >= 0, net < 0
        assert np.all(lim[buyers] <= np.broadcast_to(imp[:, None], net.shape)[buyers] + 1e-12)
        assert np.all(lim[sellers] >= np.broadcast_to(s[:, None], net.shape)[sellers] - 1e-12)
    truthful = truthful_limits(net, imp, exp, 0.05)
    np.testing.assert_allclose(truthful, np.where(net < 0, s[:, None], imp[:, None]))


def test_truthful_auction_is_the_pools_mid_market_clearing():
    rng = np.random.default_rng(1)
    net = rng.normal(size=(64, 30))
    imp, exp = rng.uniform(0.3, 0.5, 64), rng.uniform(0.0, 0.2, 64)
    pool = clear(net, imp, exp, "mid_market", 0.05)
    auction = clear(net, imp, exp, "double_auction", 0.05)  # no limits given: truthful
    for name in ("p2p_bought_kwh", "p2p_sold_kwh", "grid_import_kwh", "grid_export_kwh", "p2p_paid_usd", "p2p_revenue_usd", "price_usd_per_kwh"):
        np.testing.assert_allclose(getattr(auction, name), getattr(pool, name), rtol=1e-12, atol=1e-12, err_msg=name)


def brute_force_volume(net, limits):
    demand, supply = np.maximum(net, 0), np.maximum(-net, 0) * KEEP
    best = 0.0
    for p in limits:
        best = max(best, min(demand[limits >= p].sum(), supply[limits <= p].sum()))
    return best


@pytest.mark.parametrize("kind", ["random", "ties", "extreme", "one_home_dominates"])
def test_invariants_under_random_and_adversarial_orders(kind):
    rng = np.random.default_rng({"random": 2, "ties": 3, "extreme": 4, "one_home_dominates": 5}[kind])
    b, n = 200, 12
    net = rng.normal(size=(b, n)) * rng.uniform(0.1, 3.0, (b, 1))
    net[rng.random((b, n)) < 0.2] = 0.0
    if kind == "ties":
        limits = rng.choice([0.1, 0.2, 0.3], size=(b, n))
    elif kind == "extreme":
        limits = rng.choice([-1e6, -1.0, 0.0, 1e-9, 1.0, 1e6], size=(b, n))
    elif kind == "one_home_dominates":
        net[:, 0] = -1e4
        limits = rng.uniform(0, 1, (b, n))
    else:
        limits = rng.uniform(-0.5, 1.0, (b, n))
    imp, exp = np.full(b, 0.4), np.full(b, 0.1)
    r = double_auction(net, limits, loss=0.05, k=float(rng.uniform()))
    demand, offered = np.maximum(net, 0), np.maximum(-net, 0)
    # energy: what buyers receive is what sellers deliver; nobody trades more than its position
    np.testing.assert_allclose(r.bought_kwh.sum(1), r.sold_kwh.sum(1) * KEEP, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.bought_kwh.sum(1), r.volume_kwh, rtol=1e-9, atol=1e-9)
    assert np.all((r.bought_kwh >= 0) & (r.bought_kwh <= demand + 1e-12))
    assert np.all((r.sold_kwh >= 0) & (r.sold_kwh <= offered * (1 + 1e-12) + 1e-12))
    # individual rationality: a buyer served pays at most its bid, a seller served gets at least its ask
    p = r.price_usd_per_kwh[:, None]
    assert np.all(limits[r.bought_kwh > 1e-12] >= np.broadcast_to(p, (b, n))[r.bought_kwh > 1e-12] - 1e-9)
    assert np.all(limits[r.sold_kwh > 1e-12] <= np.broadcast_to(p, (b, n))[r.sold_kwh > 1e-12] + 1e-9)
    # efficiency: the volume is the largest at which the curves cross
    for i in range(0, b, 20):
        assert r.volume_kwh[i] == pytest.approx(brute_force_volume(net[i], limits[i]), rel=1e-9, abs=1e-9)
    # money, through the market: buyers' payments are sellers' revenue; grid flows are the rest
    c = clear(net, imp, exp, "double_auction", 0.05, limit_usd_per_kwh=limits)
    np.testing.assert_allclose(c.p2p_paid_usd.sum(1), c.p2p_revenue_usd.sum(1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(c.grid_import_kwh + c.p2p_bought_kwh, demand, atol=1e-12)
    np.testing.assert_allclose(c.grid_export_kwh + c.p2p_sold_kwh, offered, atol=1e-12)
    assert np.all(c.grid_import_kwh >= 0) and np.all(c.grid_export_kwh >= 0)


def test_bad_orders_are_rejected():
    with pytest.raises(ValueError, match=r"limit price at \(scenario, household\) \(0, 1\) is nan"):
        double_auction(np.array([[1.0, -1.0]]), np.array([[0.3, np.nan]]))
    with pytest.raises(ValueError, match="k must lie in"):
        double_auction(np.array([[1.0, -1.0]]), np.array([[0.3, 0.2]]), k=1.5)
    with pytest.raises(ValueError, match="shape"):
        double_auction(np.array([[1.0, -1.0]]), np.array([0.3, 0.2]))
