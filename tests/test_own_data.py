"""docs/own_data.md, run as written on a small generated CSV: the same homes in every command."""

import json
import re
from pathlib import Path

import pytest

from energy_env.data.synthetic import generate_synthetic
from energy_env.data.writing import dataset_to_rows
from train.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "own_data.md"


def doc_commands() -> list[list[str]]:
    """The ``wattshare ...`` lines of the walkthrough's bash blocks, as argument lists."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    return [line.split()[1:] for block in blocks for line in block.splitlines() if line.startswith("wattshare ")]


@pytest.fixture(scope="module")
def homes(tmp_path_factory):
    """Five homes over two months as a CSV whose ids are not in natural order, and the doc's YAML."""
    root = tmp_path_factory.mktemp("own")
    ds = generate_synthetic(5, 2025, 3, num_days=59)
    rows, _ = dataset_to_rows(ds)
    rows["household_id"] = rows["household_id"].map({f"household_{i}": f"h{9 - 2 * i}" for i in range(5)})  # h9, h7, ... h1
    rows.drop(columns=["temperature_c"]).to_csv(root / "my_homes.csv", index=False)
    yaml_block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    (root / "my_homes.yaml").write_text(yaml_block)
    return root


def run_doc(root: Path, args: list[str], **replace: str) -> int:
    """A walkthrough command in ``root``, with e.g. the steps made small for a test."""
    args = [replace.get(a, a) for a in args]
    args = [str(root / a) if a.startswith(("out/", "my_homes")) else a for a in args]
    return main(args)


def test_the_walkthrough_runs_as_written(homes, capsys, monkeypatch):
    monkeypatch.chdir(homes)  # the YAML names my_homes.csv relative to where the commands run
    commands = doc_commands()
    assert [c[0] for c in commands] == ["benchmark", "train-policies", "benchmark"]
    assert run_doc(homes, commands[0]) == 0
    out = capsys.readouterr().out
    assert "5 homes" in out and "rows read" in out and "| rule_based |" in out
    first = json.loads((homes / "out/my_homes/results_rule_based.json").read_text())["data"]
    assert first["household_ids"] == ["h9", "h7", "h5", "h3", "h1"]  # the file's order
    assert (homes / "out/my_homes/run_config.yaml").is_file()
    # training for a few thousand steps stands in for the doc's 3 M
    assert run_doc(homes, [*commands[1], "--no-eval"], **{"3000000": "2000"}) == 0
    meta = json.loads((homes / "out/my_homes_ppo/meta.json").read_text())
    assert meta["data"]["household_ids"] == first["household_ids"] and meta["data"]["fingerprint_sha256"] == first["fingerprint_sha256"]
    assert run_doc(homes, commands[2]) == 0
    assert "| ppo_shared |" in capsys.readouterr().out
    again = json.loads((homes / "out/my_homes/results_ppo_shared.json").read_text())["data"]
    assert again["fingerprint_sha256"] == first["fingerprint_sha256"]


def test_the_same_yaml_selects_the_same_homes_in_every_command(homes, capsys, monkeypatch):
    monkeypatch.chdir(homes)
    cfg = homes / "three.yaml"
    cfg.write_text((homes / "my_homes.yaml").read_text().replace("num_households: null", "num_households: 3"))
    seen = []
    for command in (["benchmark", "--policies", "pge_baseline", "--weeks", "1", "--no-plots", "--output", str(homes / "b3")],
                    ["train-policies", "--steps", "500", "--no-eval", "--output", str(homes / "p3")],
                    ["train-forecasters", "--epochs", "1", "--hidden-size", "4", "--window", "8", "--workers", "1", "--no-progress",
                     "--output", str(homes / "f3")]):
        assert main([*command, "--config", str(cfg)]) == 0, command
        line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("data: "))
        seen.append(line)
    assert len(set(seen)) == 1 and "3 homes" in seen[0] and "h9, h7, h5" in seen[0]


def test_a_home_over_its_limit_names_the_file_line_and_the_key(homes, capsys, monkeypatch):
    monkeypatch.chdir(homes)
    cfg = homes / "tight.yaml"
    cfg.write_text((homes / "my_homes.yaml").read_text().replace("import_limit_kwh: 10.0", "import_limit_kwh: 0.5"))
    assert main(["benchmark", "--config", str(cfg), "--policies", "pge_baseline", "--weeks", "1", "--no-plots",
                 "--output", str(homes / "t")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"my_homes\.csv lines? \d+", err) and "grid.import_limit_kwh" in err and "grid.over_limit: unserved" in err
