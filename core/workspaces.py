"""Workspaces: on a shared server every visitor's runs live in a folder of their own.

A workspace is named by a secret the visitor holds (an unguessable key in their link) or by the identity of
a signed-in user. Its folder name is a hash of that name, so listing the runs folder reveals no keys or
e-mail addresses, and a visitor can only reach a workspace whose name they know. The local lab (no
workspace) keeps its runs directly in the runs folder, as before.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

__all__ = ["WORKSPACES_DIR", "is_workspace_key", "new_workspace_key", "user_workspace", "workspace_root",
           "workspace_roots"]

WORKSPACES_DIR = "workspaces"  # under the runs folder
_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")  # what new_workspace_key makes (and a little room)
_FOLDER = re.compile(r"[0-9a-f]{32}")


def new_workspace_key() -> str:
    """An unguessable key (128 bits) for an anonymous visitor's workspace."""
    return secrets.token_urlsafe(16)


def is_workspace_key(value: object) -> bool:
    """True for a key new_workspace_key could have made (a link's ?ws= is untrusted input)."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def user_workspace(issuer: str, subject: str) -> str:
    """The workspace name of a signed-in user: their identity provider and its stable user id."""
    return f"user:{issuer}:{subject}"


def workspace_root(root: Path, workspace: str | None) -> Path:
    """The runs folder of a workspace (the local lab's is `root` itself)."""
    if workspace is None:
        return root
    digest = hashlib.sha256(workspace.encode("utf-8")).hexdigest()[:32]
    return root / WORKSPACES_DIR / digest


def workspace_roots(root: Path) -> list[Path]:
    """Every workspace folder that exists under `root` (start-up recovery scans them all)."""
    try:
        return sorted(p for p in (root / WORKSPACES_DIR).iterdir() if _FOLDER.fullmatch(p.name) and p.is_dir())
    except OSError:
        return []
