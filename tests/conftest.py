"""Shared fixtures: small communities built once per session, and the ../shared data path."""

from pathlib import Path

import pytest

from energy_env.community import build_community
from energy_env.config import make_config

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CITYLEARN = SHARED_DATA / "citylearn_2022"


def require_shared(path: Path = CITYLEARN) -> Path:
    """Skip the calling test where ../shared/data is absent (a user's clone)."""
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data sits beside the checkout in CI only)")
    return path


@pytest.fixture(scope="session")
def community():
    """The default community: 10 synthetic homes, one year."""
    return build_community(make_config())


@pytest.fixture(scope="session")
def grid_charging_community():
    """Same homes, batteries allowed to charge from the grid, heterogeneous capacities."""
    caps = [13.5, 0.0, 6.4, 13.5, 10.0, 0.0, 13.5, 5.0, 13.5, 20.0]
    return build_community(make_config(battery={"charge_from_grid": True, "capacity_kwh": caps, "degradation_cost_usd_per_kwh": 0.03}))


@pytest.fixture(scope="session")
def limited_community():
    """Per-home grid limits, some tight enough that load is shed (grid.over_limit: unserved)."""
    grid = {
        "import_limit_kwh": [10.0, 1.0, 1.5, 10.0, 0.8, 2.0, 10.0, 3.0, 10.0, 1.2],
        "export_limit_kwh": [4.0, 0.5, 2.0, 0.0, 1.0, 4.0, 4.0, 1.5, 0.2, 4.0],
        "over_limit": "unserved",
    }
    return build_community(make_config(grid=grid, battery={"charge_from_grid": True}))
