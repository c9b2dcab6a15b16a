"""Redaction of secrets in messages: every error and log line of the data sources passes through :func:`redact`.

Two kinds of secret are removed:

* the secrets a caller knows (a DSN, its password, a Supabase key), in their plain and URL-encoded
  forms;
* anything that *looks* like a credential, whether or not the caller knew it was there:

  - a URL's user-info: ``postgresql://user:pass@host`` -> ``postgresql://***@host``;
  - ``name=value`` / ``name: value`` where the name ends in key, password, passwd, pwd, secret or
    token (``apikey=...``, ``password=...``, ``SUPABASE_KEY=...``, ``x-api-key: ...``);
  - ``Bearer <token>`` (an ``Authorization`` header);
  - JSON Web Tokens (``eyJ...``, the form of Supabase's legacy anon / service role keys) and
    Supabase's new API keys (``sb_secret_...``, ``sb_publishable_...``).

The patterns err on the side of hiding: an innocent ``token: x`` in a message loses its ``x``.
This module imports nothing from the package, so :class:`~energy_env.data.dataset.DataError` can
use it on every message.
"""

from __future__ import annotations

import re
from urllib.parse import quote

MASK = "***"
# scheme://user-info@ ; the user-info may itself hold an unencoded "@" (greedy up to the last one
# before the path), never a "/" or whitespace.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@]*(?:@[^/\s@]*)*)@")
_KEY_VALUE = re.compile(
    r"(?P<name>\b[A-Za-z0-9_-]*(?:key|password|passwd|pwd|secret|token))(?P<sep>\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&;,'\")\]}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}")
_SUPABASE_KEY = re.compile(r"\bsb_(?:secret|publishable)_[A-Za-z0-9_-]+")
MIN_SECRET_CHARS = 4  # shorter "secrets" (an empty password, "x") would blank out ordinary words


def redact(text: object, *secrets: str | None) -> str:
    """``text`` with each known secret (plain and URL-encoded) and anything credential-like replaced by ``***``.

    Args:
        text: a message (anything; ``str()`` is taken).
        secrets: values known to be secret (None and values under 4 characters are ignored).
    """
    out = str(text)
    # longest first, so that a password inside a DSN does not leave the DSN's other parts half-masked
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            out = out.replace(form, MASK)
    out = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@" if m["userinfo"] != MASK else m[0], out)
    out = _KEY_VALUE.sub(lambda m: m[0] if m["value"].strip("'\"") == MASK else f"{m['name']}{m['sep']}{MASK}", out)
    out = _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", out)
    out = _JWT.sub(MASK, out)
    return _SUPABASE_KEY.sub(MASK, out)


__all__ = ["MASK", "redact"]
