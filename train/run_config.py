"""The run configuration: one YAML that describes a whole ``wattshare`` run.

The env's keys sit at the top level (``num_households``, ``battery``, ``data``...: an
:class:`~energy_env.config.EnvConfig`, so every env config is a run config); the sections of
:data:`~energy_env.config.RUN_SECTIONS` configure the rest of the run:

* ``oracle``: the oracle's solver budget (:class:`policies.settings.OracleSettings`).

Every section forbids unknown keys and checks its values, so an error names the key, e.g.
``oracle.time_limit_s: Input should be greater than 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from energy_env.config import RUN_SECTIONS, ConfigError, EnvConfig, StrictModel, format_validation_error, make_config, read_yaml
from policies.settings import OracleSettings


class RunConfig(StrictModel):
    """A whole run: the env and the sections read by the commands."""

    env: EnvConfig = EnvConfig()
    oracle: OracleSettings = OracleSettings()


def load_run_config(
    path: str | Path | None = None, env_overrides: Mapping[str, Any] | None = None, **sections: Mapping[str, Any]
) -> RunConfig:
    """Read a run YAML (None: the defaults); ``env_overrides`` as for :func:`~energy_env.config.make_config`,
    ``sections`` override keys of a section, e.g. ``oracle={"mode": "deterministic"}``.

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
