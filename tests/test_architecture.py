"""Imports point down: energy_env < policies, forecasting < federated < train; no circles, no private names across packages."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A package may import itself and the packages of a lower rank.
RANK = {"energy_env": 0, "policies": 1, "forecasting": 1, "federated": 2, "train": 3}


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import in a file, lazy ones inside functions included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def package_files():
    for package in RANK:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize("package", list(RANK))
def test_imports_point_down(package):
    bad = []
    for owner, path in package_files():
        if owner != package:
            continue
        for module, _, line in imports_of(path):
            top = module.split(".")[0]
            if top in RANK and top != owner and RANK[top] >= RANK[owner]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(bad)


def test_no_private_names_across_packages():
    bad = []
    for owner, path in package_files():
        for module, names, line in imports_of(path):
            top = module.split(".")[0]
            if top in RANK and top != owner:
                private = [n for n in names if n.startswith("_")] + ([module] if any(p.startswith("_") for p in module.split(".")[1:]) else [])
                if private:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}: {private}")
    assert not bad, "private names used across packages:\n" + "\n".join(bad)


def test_the_env_needs_none_of_the_extras():
    """The base install (numpy, pandas, pydantic, gymnasium, pettingzoo, numba) runs the env: with every
    package of the extras made unimportable (torch, SB3, Flower, HiGHS, ONNX, the databases, Parquet)
    the env builds, steps, vectorises and runs the rule-based controller."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for m in ('torch', 'stable_baselines3', 'supersuit', 'flwr', 'highspy', 'scipy', 'onnx', 'onnxruntime',"
        " 'psycopg', 'supabase', 'pyarrow', 'tqdm', 'matplotlib'): sys.modules[m] = None  # import fails\n"
        "import numpy as np, energy_env, energy_env.data\n"
        "from energy_env.vector import WattshareVectorEnv\n"
        "from energy_env.rollout import rollout\n"
        "from policies.rule_based import RuleBasedPolicy\n"
        "env = energy_env.parallel_env(num_households=2); env.reset(seed=0)\n"
        "env.step({a: np.zeros(1, dtype=np.float32) for a in env.agents})\n"
        "WattshareVectorEnv(num_scenarios=2, community=env.community).reset(seed=0)\n"
        "print(rollout(env.community, RuleBasedPolicy().act, np.array([0]), 48)['cost_usd'].shape)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "(48, 1, 2)"
