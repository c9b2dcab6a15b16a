"""Policy checkpoints that load without running code from the files.

A checkpoint is a folder (written by :func:`train.ppo.save_checkpoint`):

* ``meta.json``: what the network is and what it was trained for: format and version, name,
  mode (``shared``: one network for every home; ``independent`` / ``federated``: one per home),
  observation layout and size, action space, network architecture, community size, residual
  base and scale, forecast provider, package version, training steps, settings and config;
* ``policy.pt`` (shared) or ``policy_<i>.pt`` (one per home): the network's ``state_dict``,
  tensors only, read with ``torch.load(weights_only=True)``;
* ``optimizer.pt`` / ``optimizer_<i>.pt``: Adam's state (tensors and numbers), for resuming;
* ``obs_rms.npz``: one row per network: the observation normalisation (``mean``, ``var``,
  ``count``) and the return normalisation (``return_mean``, ``return_var``, ``return_count``),
  read with ``np.load(allow_pickle=False)``.

Reading rebuilds the network from ``meta.json`` and checks every file against it, and the
metadata against the community, before anything is used; a problem raises
:class:`CheckpointError` naming the file and the mismatch. Checkpoints of the old format (SB3
``policy.zip``, which unpickles objects) load only through :func:`load_legacy_zip`, which the
caller must ask for explicitly.
"""

from __future__ import annotations

import json
import math
import re
import warnings
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

from energy_env.community import Community
from energy_env.core import action_width
from energy_env.core import layout_of as core_layout_of
from policies.observation_scale import SCALES

FORMAT = "wattshare-policy"
FORMAT_VERSION = 1
MODES = ("shared", "independent", "federated")  # independent and federated: one network per home
ACTIVATIONS: dict[str, type[nn.Module]] = {c.__name__: c for c in (nn.Tanh, nn.ReLU, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.GELU)}
# An edited meta.json must not make the loader allocate gigabytes before the weights are checked.
MAX_LAYERS, MAX_LAYER_WIDTH, MAX_OBS_SIZE = 8, 1024, 4096
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}")  # policy names end up in file names
NORMALIZER_KEYS = ("mean", "var")
RESUME_KEYS = ("count", "return_mean", "return_var", "return_count")
TRUST_FLAG = "trust_pickle=True (wattshare benchmark --trust-pickled-checkpoints)"


class CheckpointError(ValueError):
    """A policy checkpoint is missing, corrupt, untrusted, or made for another env; names the file."""


# ---------------------------------------------------------------------------------------------
# What a checkpoint describes


def layout_of(community: Community) -> list[list[Any]]:
    """The observation layout a checkpoint must match: ``[[name, width], ...]``."""
    return [[name, width] for name, width in core_layout_of(community.params).fields()]


def env_action_space(width: int = 1) -> spaces.Box:
    """One household's action in the env (``energy_env.env`` / ``energy_env.vector``): a setpoint in
    [-1, 1], and in the double auction (``width`` 2) a price action too."""
    return spaces.Box(-1.0, 1.0, (width,), np.float32)


def package_version() -> str:
    """The installed wattshare version, or ``"unknown"`` when run from an uninstalled tree."""
    try:
        return version("wattshare")
    except PackageNotFoundError:
        return "unknown"


def weights_files(mode: str, num_households: int, stem: str = "policy") -> list[str]:
    """``policy.pt`` for a shared network, ``policy_<i>.pt`` per home otherwise (``stem="optimizer"`` alike)."""
    return [f"{stem}.pt"] if mode == "shared" else [f"{stem}_{i}.pt" for i in range(num_households)]


def network_spec(policy: ActorCriticPolicy) -> dict[str, Any]:
    """The architecture :func:`build_policy` rebuilds ``policy`` from; ValueError for what it cannot rebuild."""
    activation = policy.activation_fn.__name__
    unsupported = [
        what for what, bad in (
            ("gSDE", policy.use_sde), ("squashed output", policy.squash_output),
            (f"features extractor {policy.features_extractor_class.__name__}", policy.features_extractor_class is not FlattenExtractor),
            (f"optimizer {policy.optimizer_class.__name__}", policy.optimizer_class is not torch.optim.Adam),
            (f"activation {activation}", activation not in ACTIVATIONS),
        ) if bad
    ]
    if unsupported:
        raise ValueError(f"the checkpoint format rebuilds MLP actor-critics only; this policy has {', '.join(unsupported)}")
    arch = policy.net_arch
    return {
        "policy": "ActorCriticPolicy",
        "net_arch": {k: list(v) for k, v in arch.items()} if isinstance(arch, dict) else list(arch),
        "activation": activation,
        "log_std_init": float(policy.log_std_init),
        "share_features_extractor": bool(policy.share_features_extractor),
        "optimizer": "Adam",
        "optimizer_kwargs": {k: float(v) for k, v in (policy.optimizer_kwargs or {}).items()},
    }


def build_policy(network: dict[str, Any], obs_size: int, action_space: spaces.Box) -> ActorCriticPolicy:
    """A fresh network of the given architecture (from :func:`network_spec`), for a state dict to fill."""
    arch = network["net_arch"]
    # Building draws initial weights, which the checkpoint's replace: keep the caller's RNG untouched.
    with torch.random.fork_rng(devices=[]):
        return ActorCriticPolicy(
            spaces.Box(-np.inf, np.inf, (obs_size,), np.float32),  # the network sees normalised observations
            action_space,
            lambda _: 0.0,  # learning rate: acting never steps the optimizer; resuming builds a PPO model instead
            net_arch={k: list(v) for k, v in arch.items()} if isinstance(arch, dict) else list(arch),
            activation_fn=ACTIVATIONS[network["activation"]],
            log_std_init=network["log_std_init"],
            share_features_extractor=network["share_features_extractor"],
            ortho_init=False,
            optimizer_kwargs=dict(network["optimizer_kwargs"]),
        )


def make_meta(
    *, name: str, mode: str, community: Community, network: dict[str, Any], residual_base: str | None,
    residual_scale: float, household_steps: int, observation_scale: str = "absolute", extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``meta.json`` of a new checkpoint (``extra``: informative keys such as settings and config)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not NAME.fullmatch(name):
        raise ValueError(f"policy name {name!r} must match {NAME.pattern} (it names result files)")
    action = env_action_space(action_width(community.params))
    layout = layout_of(community)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "package_version": package_version(),
        "mode": mode,
        "num_households": community.num_households,
        "observation_layout": layout,
        "observation_size": sum(w for _, w in layout),
        "action_space": {"shape": list(action.shape), "low": action.low.tolist(), "high": action.high.tolist()},
        "network": network,
        "residual_base": residual_base,
        "residual_scale": float(residual_scale),
        "forecast_provider": community.data.forecast_name,
        "observation_scale": observation_scale,
        "household_steps": int(household_steps),
        **(extra or {}),
    }


# ---------------------------------------------------------------------------------------------
# Writing


def write_checkpoint(out: Path, meta: dict[str, Any], networks: list[ActorCriticPolicy], arrays: dict[str, np.ndarray]) -> None:
    """Write the networks, their optimizers, the normalisers (``arrays``) and ``meta`` into ``out``."""
    count = 1 if meta["mode"] == "shared" else meta["num_households"]
    if len(networks) != count:
        raise ValueError(f"a {meta['mode']} checkpoint of {meta['num_households']} homes holds {count} networks, got {len(networks)}")
    bad = {k: np.shape(v) for k, v in arrays.items() if np.shape(v)[:1] != (count,)}
    if bad or not set(NORMALIZER_KEYS) <= set(arrays):
        raise ValueError(f"normaliser arrays need mean and var with one row per network ({count}); got shapes {bad or list(arrays)}")
    out.mkdir(parents=True, exist_ok=True)
    for net, weights, optim in zip(networks, weights_files(meta["mode"], count), weights_files(meta["mode"], count, "optimizer")):
        _atomic(out / weights, lambda f: torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, f))
        _atomic(out / optim, lambda f: torch.save(net.optimizer.state_dict(), f))
    _atomic(out / "obs_rms.npz", lambda f: np.savez(f, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}))
    # meta.json last: a folder whose meta.json is new has every other file new too
    _atomic(out / "meta.json", lambda f: f.write(json.dumps(meta, indent=2, allow_nan=False).encode()))


def _atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        write(f)
    tmp.replace(path)  # a crash mid-write never leaves half a file under the real name


# ---------------------------------------------------------------------------------------------
# Reading: metadata


def read_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` of a checkpoint folder as written (unvalidated; see :func:`validate_meta`)."""
    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: not a policy checkpoint (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text(), parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"{meta_path}: corrupt ({err})") from None
    except OSError as err:
        raise CheckpointError(f"{meta_path}: unreadable ({err})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: corrupt (a JSON {type(meta).__name__}, expected an object)")
    return meta


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name}")


def is_legacy(meta: dict[str, Any]) -> bool:
    """Whether ``meta`` was written by the old (pickled SB3 zip) format, which had no ``format`` key."""
    return "format" not in meta


def validate_meta(meta: dict[str, Any], meta_path: Path) -> dict[str, Any]:
    """``meta`` checked key by key (type, range, consistency); CheckpointError naming ``meta_path``."""
    fmt = _get(meta, "format", str, meta_path)
    if fmt != FORMAT:
        raise CheckpointError(f"{meta_path}: not a wattshare policy checkpoint (format {fmt!r}, expected {FORMAT!r})")
    ver = _get(meta, "format_version", int, meta_path)
    if ver != FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: format_version {ver}; this code reads version {FORMAT_VERSION}")
    name = _get(meta, "name", str, meta_path)
    if not NAME.fullmatch(name):
        raise CheckpointError(f"{meta_path}: name {name!r} must match {NAME.pattern}")
    check_common_keys(meta, meta_path)
    size = _get(meta, "observation_size", int, meta_path)
    widths = sum(w for _, w in meta["observation_layout"])
    if size != widths:
        raise CheckpointError(f"{meta_path}: observation_size {size} but the observation_layout adds up to {widths}")
    _action_space(meta, meta_path)
    _network(meta, meta_path)
    if "residual_base" not in meta:
        raise CheckpointError(f"{meta_path}: missing key 'residual_base'")
    check_residual(meta, meta_path)
    _get(meta, "forecast_provider", str, meta_path)
    if "observation_scale" in meta:  # absent in checkpoints written before it existed: absolute
        scale = _get(meta, "observation_scale", str, meta_path)
        if scale not in SCALES:
            raise CheckpointError(f"{meta_path}: observation_scale {scale!r}, expected one of {SCALES}")
    _get(meta, "package_version", str, meta_path)
    if _get(meta, "household_steps", int, meta_path) < 0:
        raise CheckpointError(f"{meta_path}: household_steps must be >= 0")
    return meta


def check_common_keys(meta: dict[str, Any], meta_path: Path) -> None:
    """The keys both formats have: mode, community size, observation layout."""
    mode = _get(meta, "mode", str, meta_path)
    if mode not in MODES:
        raise CheckpointError(f"{meta_path}: mode {mode!r}, expected one of {MODES}")
    if _get(meta, "num_households", int, meta_path) < 1:
        raise CheckpointError(f"{meta_path}: num_households must be >= 1")
    layout = _get(meta, "observation_layout", list, meta_path)
    for k, field in enumerate(layout):
        if not (isinstance(field, list) and len(field) == 2 and isinstance(field[0], str) and _is_int(field[1]) and field[1] >= 1):
            raise CheckpointError(f"{meta_path}: observation_layout[{k}] is {field!r}, expected [name, width >= 1]")
    size = sum(w for _, w in layout)
    if not 1 <= size <= MAX_OBS_SIZE:
        raise CheckpointError(f"{meta_path}: observation size {size} outside 1..{MAX_OBS_SIZE}")


def check_residual(meta: dict[str, Any], meta_path: Path) -> None:
    """``residual_base`` (null or a registered controller) and ``residual_scale`` (a finite number), where present."""
    from policies.registry import POLICIES  # the base controllers a residual policy may correct

    base = meta.get("residual_base")
    if not (base is None or (isinstance(base, str) and base in POLICIES)):
        raise CheckpointError(f"{meta_path}: residual_base must be null or one of {sorted(POLICIES)}, got {base!r}")
    if "residual_scale" in meta or "format" in meta:
        _get(meta, "residual_scale", float, meta_path)


def _action_space(meta: dict[str, Any], meta_path: Path) -> None:
    space = _get(meta, "action_space", dict, meta_path)
    shape = space.get("shape")
    if not (isinstance(shape, list) and shape and all(_is_int(s) and 1 <= s <= 64 for s in shape)):
        raise CheckpointError(f"{meta_path}: action_space.shape {shape!r}, expected a list of sizes")
    for key in ("low", "high"):
        values = space.get(key)
        if not (isinstance(values, list) and len(values) == math.prod(shape) and all(_is_float(v) for v in values)):
            raise CheckpointError(f"{meta_path}: action_space.{key} {values!r}, expected {math.prod(shape)} finite numbers")
    if any(lo >= hi for lo, hi in zip(space["low"], space["high"])):
        raise CheckpointError(f"{meta_path}: action_space.low must be below action_space.high")


def action_space_of(meta: dict[str, Any]) -> spaces.Box:
    """The action space a validated ``meta`` describes."""
    a = meta["action_space"]
    shape = tuple(a["shape"])
    return spaces.Box(np.array(a["low"], np.float32).reshape(shape), np.array(a["high"], np.float32).reshape(shape), shape, np.float32)


def _network(meta: dict[str, Any], meta_path: Path) -> None:
    net = _get(meta, "network", dict, meta_path)
    where = meta_path  # messages say network.<key>
    if net.get("policy") != "ActorCriticPolicy" or net.get("optimizer") != "Adam":
        raise CheckpointError(f"{where}: network.policy/optimizer {net.get('policy')!r}/{net.get('optimizer')!r}, expected ActorCriticPolicy/Adam")
    arch = net.get("net_arch")
    layers = list(arch.values()) if isinstance(arch, dict) and set(arch) <= {"pi", "vf"} else [arch]
    if not all(isinstance(ls, list) and len(ls) <= MAX_LAYERS and all(_is_int(w) and 1 <= w <= MAX_LAYER_WIDTH for w in ls) for ls in layers):
        raise CheckpointError(f"{where}: network.net_arch {arch!r}, expected up to {MAX_LAYERS} widths in 1..{MAX_LAYER_WIDTH} (or pi/vf lists)")
    if net.get("activation") not in ACTIVATIONS:
        raise CheckpointError(f"{where}: network.activation {net.get('activation')!r}, expected one of {sorted(ACTIVATIONS)}")
    if not _is_float(net.get("log_std_init")):
        raise CheckpointError(f"{where}: network.log_std_init {net.get('log_std_init')!r}, expected a finite number")
    if not isinstance(net.get("share_features_extractor"), bool):
        raise CheckpointError(f"{where}: network.share_features_extractor {net.get('share_features_extractor')!r}, expected true/false")
    kwargs = net.get("optimizer_kwargs")
    if not (isinstance(kwargs, dict) and set(kwargs) <= {"eps", "weight_decay"} and all(_is_float(v) for v in kwargs.values())):
        raise CheckpointError(f"{where}: network.optimizer_kwargs {kwargs!r}, expected finite eps / weight_decay")


def check_env(meta: dict[str, Any], community: Community, meta_path: Path) -> None:
    """Raise :class:`CheckpointError` if the checkpoint was made for another env than ``community``'s."""
    want = layout_of(community)
    have = meta["observation_layout"]
    if have != want:
        diff = [f"{h} != {w}" for h, w in zip(have, want) if h != w][:3]
        raise CheckpointError(
            f"{meta_path}: trained for another observation layout ({len(have)} fields of {sum(w for _, w in have)} values vs the env's "
            f"{len(want)} of {sum(w for _, w in want)}; first differences: {diff or 'field count'}); retrain or use the config it was trained with"
            + _day_ahead_hint(have, want)
        )
    if meta["mode"] != "shared" and meta["num_households"] != community.num_households:
        raise CheckpointError(
            f"{meta_path}: {meta['mode']} policies for {meta['num_households']} homes (one network each), the community has {community.num_households}"
        )
    if "action_space" in meta:  # the legacy format did not record it (its zip did: checked there)
        check_action_space(action_space_of(meta), meta_path, action_width(community.params))
    if meta.get("forecast_provider") not in (None, community.data.forecast_name):
        warnings.warn(f"{meta_path}: trained on {meta['forecast_provider']!r} forecasts, the community uses {community.data.forecast_name!r}",
                      stacklevel=3)


def _day_ahead_hint(have: list, want: list) -> str:
    """Which ``forecast.day_ahead_blocks`` each side has, when that is what differs."""
    blocks = lambda layout: next((w for name, w in layout if name == "load_next_day_mean_kwh"), 0)  # noqa: E731
    k_have, k_want = blocks(have), blocks(want)
    return "" if k_have == k_want else f" (forecast.day_ahead_blocks: {k_have} in the checkpoint, {k_want} in the env)"


def check_action_space(space: spaces.Space, where: Path, width: int = 1) -> None:
    """Raise :class:`CheckpointError` unless ``space`` is the env's action space (``width`` values per household)."""
    env = env_action_space(width)
    same = isinstance(space, spaces.Box) and space.shape == env.shape and np.array_equal(space.low, env.low) and np.array_equal(space.high, env.high)
    if not same:
        raise CheckpointError(f"{where}: action space {space}, the env's is {env}")


# ---------------------------------------------------------------------------------------------
# Reading: arrays


def read_normalizers(file: Path, count: int, obs_size: int, keys: tuple[str, ...] = NORMALIZER_KEYS) -> dict[str, np.ndarray]:
    """``keys`` of ``obs_rms.npz``, checked: one finite row per network, observation-sized where per field."""
    try:
        with np.load(file, allow_pickle=False) as stats:  # never unpickle: object arrays are refused
            absent = [k for k in keys if k not in stats.files]
            if absent:
                raise CheckpointError(f"{file}: no array {absent[0]!r}; expected {', '.join(keys)}, found {', '.join(stats.files) or 'none'}")
            arrays = {k: np.asarray(stats[k]) for k in keys}
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing (the observation normalisation)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{file}: corrupt ({type(err).__name__}: {err})") from None
    for key, arr in arrays.items():
        want = (count, obs_size) if key in NORMALIZER_KEYS else (count,)  # per field, or one number per network
        if arr.shape != want:
            raise CheckpointError(f"{file}: {key} has shape {arr.shape}, expected {want} ({count} network(s), observation size {obs_size})")
        if arr.dtype.kind not in "fiu":
            raise CheckpointError(f"{file}: {key} has dtype {arr.dtype}, expected numbers")
        if not np.isfinite(arr).all():
            raise CheckpointError(f"{file}: {key} holds {int(arr.size - np.isfinite(arr).sum())} non-finite values")
        if key not in ("mean", "return_mean") and (arr < 0).any():
            raise CheckpointError(f"{file}: {key} has negative values (a variance or a count)")
    return {k: v.astype(np.float64) for k, v in arrays.items()}


def load_state_dict(file: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A weights file read with ``weights_only=True`` and checked against ``expected`` (keys, shapes, dtypes, finite)."""
    state = _load_tensors(file, "weights")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{file}: not a state dict (a {type(state).__name__}, expected parameter names -> tensors)")
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{file}: parameters do not match the network meta.json describes (missing {missing}, unexpected {extra})")
    for key, want in expected.items():
        have = state[key]
        if tuple(have.shape) != tuple(want.shape) or have.dtype != want.dtype:
            raise CheckpointError(f"{file}: {key} is {have.dtype} {tuple(have.shape)}, the network meta.json describes needs {want.dtype} {tuple(want.shape)}")
        if not torch.isfinite(have).all():
            raise CheckpointError(f"{file}: {key} holds non-finite values")
    return state


def load_optimizer(file: Path, optimizer: torch.optim.Optimizer) -> None:
    """Restore ``optimizer`` from a file read with ``weights_only=True``; checks every state tensor's shape."""
    state = _load_tensors(file, "optimizer state")
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise CheckpointError(f"{file}: does not fit the network's optimizer ({type(err).__name__}: {err})") from None
    for group in optimizer.param_groups:  # torch checks the groups, not the tensors' shapes
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise CheckpointError(f"{file}: {key} has shape {tuple(value.shape)} for a parameter of shape {tuple(param.shape)}")
                if isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
                    raise CheckpointError(f"{file}: {key} holds non-finite values")


def _load_tensors(file: Path, what: str) -> Any:
    if not file.is_file():
        raise CheckpointError(f"{file}: missing ({what})")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)  # tensors and plain containers only: no code runs
    except Exception as err:  # truncated zip, foreign pickle, a pickled object: all mean "not a safe weights file"
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"{file}: not a readable {what} file of tensors (torch.load weights_only=True: {type(err).__name__}: {first})") from None


# ---------------------------------------------------------------------------------------------
# The old format, only on request


def legacy_refusal(path: Path) -> CheckpointError:
    """The error for an old-format checkpoint loaded without the trust flag."""
    return CheckpointError(
        f"{path}: a legacy Stable-Baselines3 checkpoint (policy.zip / policy_<i>.zip). Loading it unpickles objects "
        f"stored in the zip, which can run arbitrary code; it is refused by default. Load it only if you trust where it "
        f"came from, with {TRUST_FLAG}, or retrain to write the safe format (policy.pt + meta.json)"
    )


def load_legacy_zip(file: Path) -> ActorCriticPolicy:
    """UNSAFE: the network of an old SB3 ``policy.zip``. Call it only for a file the user trusts.

    SB3's zip stores its constructor arguments (spaces, policy class, kwargs) as cloudpickle,
    which runs whatever code the file carries when read: only the caller's explicit trust flag
    (``LearnedPolicy.load(..., trust_pickle=True)``) leads here. The weights themselves SB3
    reads with ``torch.load(weights_only=True)``; the network is then rebuilt as
    :func:`build_policy` does and the weights are checked like the safe format's.
    """
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        data, params, _ = load_from_zip_file(file, device="cpu")  # <- unpickles: trusted files only
        obs_space, action_space = data["observation_space"], data["action_space"]
        kwargs = dict(data.get("policy_kwargs") or {})
        with torch.random.fork_rng(devices=[]):
            policy = ActorCriticPolicy(obs_space, action_space, lambda _: 0.0, **kwargs)
        policy.load_state_dict(params["policy"])
    except CheckpointError:
        raise
    except Exception as err:  # SB3 raises many types for a bad zip; name the file either way
        raise CheckpointError(f"{file}: cannot load the legacy PPO model ({type(err).__name__}: {err})") from None
    check_action_space(policy.action_space, file)
    return policy


# ---------------------------------------------------------------------------------------------
# Small typed getters


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _get(meta: dict[str, Any], key: str, kind: type, meta_path: Path) -> Any:
    if key not in meta:
        raise CheckpointError(f"{meta_path}: missing key {key!r}")
    value = meta[key]
    ok = {int: _is_int, float: _is_float}.get(kind, lambda v: isinstance(v, kind))(value)
    if not ok:
        expected = "a finite number" if kind is float else f"a {kind.__name__}"
        raise CheckpointError(f"{meta_path}: {key} is {value!r} ({type(value).__name__}), expected {expected}")
    return value
