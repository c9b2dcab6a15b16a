"""The run configuration: one YAML that describes a whole ``wattshare`` run.

The env's keys sit at the top level (``num_households``, ``battery``, ``data``...: an
:class:`~energy_env.config.EnvConfig`, so every env config is a run config); the sections of
:data:`~energy_env.config.RUN_SECTIONS` configure the rest of the run, each owned by its package:

* ``forecasting``: the LSTM forecasters (:class:`forecasting.config.ForecasterConfig`);
* ``federated``: how the server federates forecasters and policies (:class:`federated.settings.FedSettings`);
* ``training``: PPO and the training loop (:class:`train.settings.PPOSettings`);
* ``oracle``: the oracle's solver budget (:class:`policies.settings.OracleSettings`);
* ``benchmark``: which policies are scored on how many test weeks (:class:`BenchmarkSettings`);
* ``pipeline``: what the main job (``wattshare run``) adds (:class:`PipelineSettings`).

Every section forbids unknown keys and checks its values, so an error names the key, e.g.
``oracle.time_limit_s: Input should be greater than 0``. ``wattshare run`` writes the whole
configuration it ran with as ``run_config.yaml`` beside its results; passing that file back with
``--config`` runs the same job. Reading a configuration imports neither torch nor Flower.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import Field, ValidationError

from energy_env.config import RUN_SECTIONS, ConfigError, EnvConfig, Int, StrictModel, format_validation_error, make_config, read_yaml
from federated.settings import FedSettings
from forecasting.config import ForecasterConfig
from policies.settings import OracleSettings
from train.settings import PPOSettings


class BenchmarkSettings(StrictModel):
    """Which policies the benchmark scores (the ``benchmark`` section)."""

    policies: list[str] = Field(
        default_factory=lambda: ["pge_baseline", "rule_based", "mpc", "oracle"],
        description="Registered names: pge_baseline, idle, simple_rule, rule_based, mpc, mpc_day_ahead, oracle.",
    )
    weeks: Int | None = Field(None, ge=1, description="Only the first K test weeks (null: all).")
    plots: bool = True


class PipelineSettings(StrictModel):
    """What the main job adds to the sections (the ``pipeline`` section)."""

    learned: list[Literal["ppo", "ppo_residual", "apg"]] = Field(
        default_factory=lambda: ["ppo_residual", "apg"], min_length=1,
        description="Learned policies the main job trains, in order, the last one featured: ppo (shared PPO), ppo_residual "
        "(PPO correcting residual_base), apg (analytic policy gradients, training.apg_*).",
    )
    residual_base: str = Field("rule_based", description="The controller ppo_residual corrects.")
    workers: Int = Field(2, ge=1, description="Homes whose forecasters train at once (processes).")
    # The at-scale recipe (docs/scaling.md): from scale_households homes on, per-home fine-tuning
    # of 1,000 LSTMs would take hours and a rollout of 32 scenarios x 1,000 homes 1.5 M steps.
    scale_households: Int = Field(150, ge=1, description="From this many homes on, the main job follows its at-scale recipe.")
    scale_clients_per_round: Int = Field(50, ge=1, description="At scale: homes FedAvg samples per round (fraction_train).")
    scale_rollout_households: Int = Field(320, ge=1, description="At scale: households per PPO rollout step (scenarios = this / N).")
    scale_skip_policies: list[str] = Field(default_factory=lambda: ["mpc"], description="At scale: benchmark policies left out.")


class RunConfig(StrictModel):
    """A whole run: the env and the sections read by the commands."""

    env: EnvConfig = EnvConfig()
    forecasting: ForecasterConfig = ForecasterConfig()
    federated: FedSettings = FedSettings()
    training: PPOSettings = PPOSettings()
    oracle: OracleSettings = OracleSettings()
    benchmark: BenchmarkSettings = BenchmarkSettings()
    pipeline: PipelineSettings = PipelineSettings()

    def to_yaml(self) -> str:
        """The configuration as the YAML a user writes: env keys at the top, then the sections."""
        doc = self.env.model_dump(mode="json")
        doc.update({name: getattr(self, name).model_dump(mode="json") for name in RUN_SECTIONS})
        return yaml.safe_dump(doc, sort_keys=False)


assert set(RUN_SECTIONS) == set(RunConfig.model_fields) - {"env"}, "energy_env.config.RUN_SECTIONS must name RunConfig's sections"

def with_sections(run: RunConfig, sections: Mapping[str, Mapping[str, Any]]) -> RunConfig:
    """``run`` with keys of its sections replaced (None included: e.g. ``pipeline.residual_base``)."""
    return run.replace(**{name: getattr(run, name).replace(**values) for name, values in sections.items()})


# wattshare run --quick: a one-minute smoke version of the main job (with_sections(run, QUICK))
QUICK: dict[str, dict[str, Any]] = {
    "federated": {"rounds": 1, "finetune_epochs": 1},
    "training": {"total_timesteps": 20_000, "apg_iterations": 3, "apg_batch_weeks": 2},
    "benchmark": {"weeks": 1, "policies": ["pge_baseline", "rule_based", "oracle"]},
    "pipeline": {"learned": ["ppo", "apg"]},
}


def load_run_config(
    path: str | Path | None = None, env_overrides: Mapping[str, Any] | None = None, **sections: Mapping[str, Any] | None
) -> RunConfig:
    """Read a run YAML (None: the defaults); ``env_overrides`` as for :func:`~energy_env.config.make_config`,
    ``sections`` override keys of a section, e.g. ``oracle={"mode": "deterministic"}`` (None values are skipped).

    Raises :class:`ConfigError` naming the file and every bad key.
    """
    raw = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "overrides"
    env = make_config({k: v for k, v in raw.items() if k not in RUN_SECTIONS}, source=source, **dict(env_overrides or {}))
    unknown = set(sections) - set(RUN_SECTIONS)
    if unknown:
        raise ValueError(f"unknown run section(s) {sorted(unknown)}; known: {', '.join(RUN_SECTIONS)}")
    values: dict[str, Any] = {}
    for name in RUN_SECTIONS:
        section = raw.get(name) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"invalid configuration ({source}):\n  {name}: must be a mapping, got {type(section).__name__}")
        values[name] = {**section, **{k: v for k, v in dict(sections.get(name) or {}).items() if v is not None}}
    try:
        return RunConfig.model_validate({"env": env, **values})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None
