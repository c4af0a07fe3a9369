"""Is this server shared by strangers (Streamlit Community Cloud, a public host) or one learner's own lab?

A shared deployment hides error details from visitors (and, later, scopes runs to workspaces); the local
default stays one open lab. The choice is an environment variable (core.settings) so that a host's secrets
or a shell can set it; on Community Cloud, where apps run from /mount/src, it is on unless set to 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.settings import shared_setting

__all__ = ["shared_deployment"]

_CLOUD_ROOT = Path("/mount/src")  # where Streamlit Community Cloud checks out the app's repository


def shared_deployment(environ: Mapping[str, str] | None = None, app_dir: Path | None = None) -> bool:
    """True when KERAS_LAB_SHARED says so, or, when it is unset, when the app runs from Community Cloud."""
    setting = shared_setting(environ)
    if setting is not None:
        return setting
    here = (app_dir or Path(__file__).resolve().parent.parent).resolve()
    return _CLOUD_ROOT in here.parents
