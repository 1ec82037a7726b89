"""Path safety: every path that comes from the page is resolved and must lie inside an allowed root."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import UserError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class PathError(UserError, ValueError):
    """A path from the page that points outside the workspace (or is not a plain name)."""


def no_nul(text: str | Path) -> str:
    """`text` as a string; PathError where it holds a NUL byte (no file name can: the system refuses it with
    "embedded null byte")."""
    text = str(text)
    if "\0" in text:
        raise PathError(f"{text!r} holds a NUL byte (\\x00), which no file or folder name can hold: remove it.")
    return text


def inside(path: str | Path, *roots: Path, fix: str | None = None) -> Path:
    """`path` resolved (symlinks followed); raises PathError unless it lies in one of `roots`. The error names
    the path (and where it leads, when that differs) and `fix`, what the user can change."""
    no_nul(path)
    given = Path(path).expanduser()
    resolved = given.resolve()
    for root in roots:
        if resolved == root.resolve() or resolved.is_relative_to(root.resolve()):
            return resolved
    where = f"{path}" if resolved == given else f"{path} (which leads to {resolved})"
    raise PathError(f"{where} is outside the workspace: {fix or f'only files under {roots[0]} can be used here'}.")


def safe_name(name: str) -> str:
    """A single folder or file name (no separators, no '..'); raises PathError otherwise."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise PathError(f"{name!r} is not a valid name: use letters, digits, '.', '-' and '_' only.")
    return name


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe version of free text (for run and upload names)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._")
    return (cleaned or "file")[:limit]
