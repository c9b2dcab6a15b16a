"""Settings read from the environment or a ``.env`` file (credentials: a DSN, a Supabase key).

Values read here are secrets: callers never print or log them, and every message passes through
:func:`energy_env.data.redact.redact`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (``export`` prefix, quotes and ``#`` comments allowed)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name.strip()] = value
    return out


def read_setting(names: str | Sequence[str], env_file: str | Path | None = ".env") -> str | None:
    """The first of ``names`` set in the environment, else in ``env_file`` (if it exists), else None.

    The environment wins over the file, as with most ``.env`` loaders. Values are secrets: callers
    must not print or log them.
    """
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if env_file is not None and Path(env_file).is_file():
        values = parse_env_file(Path(env_file))
        for name in names:
            if values.get(name):
                return values[name]
    return None
