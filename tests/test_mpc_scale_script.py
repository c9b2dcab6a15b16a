"""benchmarks/mpc_scale.py: times the day-ahead MPC's LP and prints one row per community size."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mpc_scale.py"


def test_mpc_scale_prints_a_row_per_size(capsys):
    spec = importlib.util.spec_from_file_location("mpc_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--households", "2", "3", "--states", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2 |") or line.startswith("| 3 |")]
    assert len(rows) == 2
    cells = rows[0].split("|")
    mean, worst = cells[3].replace("(", " ").replace(")", " ").split()
    assert 0.0 <= float(mean) <= float(worst) and float(cells[4]) >= 0.0  # seconds per step, hours for 12 weeks
