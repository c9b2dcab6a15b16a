"""wattshare's simulation core and PettingZoo environment for P2P energy trading.

>>> import energy_env
>>> env = energy_env.parallel_env(num_households=10)
>>> observations, infos = env.reset(seed=0)
"""

from energy_env.config import ConfigError, EnvConfig, load_config, make_config
from energy_env.env import WattshareParallelEnv, env, parallel_env

__all__ = ["ConfigError", "EnvConfig", "WattshareParallelEnv", "env", "load_config", "make_config", "parallel_env"]
