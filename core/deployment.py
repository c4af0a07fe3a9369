"""Is this server shared by strangers (Streamlit Community Cloud, a public host) or one learner's own lab?

A shared deployment hides error details from visitors (and, later, scopes runs to workspaces); the local
default stays one open lab. The choice is an environment variable so that a host's secrets or a shell
can set it; on Community Cloud, where apps run from /mount/src, it is on unless set to 0.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SHARED_ENV", "shared_deployment"]

SHARED_ENV = "KERAS_LAB_SHARED"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_CLOUD_ROOT = Path("/mount/src")  # where Streamlit Community Cloud checks out the app's repository


def shared_deployment(environ: dict[str, str] | None = None, app_dir: Path | None = None) -> bool:
    """True when KERAS_LAB_SHARED says so, or, when it is unset, when the app runs from Community Cloud."""
    env = os.environ if environ is None else environ
    raw = env.get(SHARED_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw:
        raise ValueError(f"{SHARED_ENV} must be 1 or 0 (true/false), got {raw[:20]!r}")
    here = (app_dir or Path(__file__).resolve().parent.parent).resolve()
    return _CLOUD_ROOT in here.parents
