"""The page's workspace on the command line: `--workspace DIR` (default ./workspace, as the page's) and the runs a
command finds in it by name. Plain Python.

`train`, `chat`, `export`, `eval`, `compare` and `serve` take the same flag with the same meaning: the workspace
holds the jobs a config names no folder for (WORKSPACE/runs/NAME, WORKSPACE/evals/NAME, WORKSPACE/exports/NAME,
...), and a run given by its name rather than by a path that exists is WORKSPACE/runs/NAME.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import UserError
from engine.jobs.kinds import TRAIN
from engine.sentences import said

DEFAULT = "workspace"


class RunNotFoundError(UserError):
    """A run given by a path or a name that is neither a folder nor a run of the workspace."""


def add_workspace_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """--workspace DIR, its help ending with `what` the command finds or writes there."""
    parser.add_argument("--workspace", default=DEFAULT, metavar="DIR",
                        help=f"the page's workspace (default: {DEFAULT}): {what}")


def folder(workspace: str | Path, kind_folder: str) -> Path:
    """WORKSPACE/KIND (runs, exports, evals ...), absolute."""
    return Path(workspace).expanduser().resolve() / kind_folder


def find_run(given: str | Path, workspace: str | Path) -> Path:
    """The run `given` names: the path itself where it exists, else (a relative path: a run's name) the workspace's
    run of that name, WORKSPACE/runs/NAME; RunNotFoundError naming every place looked at where none exists."""
    path = Path(given).expanduser()
    if path.exists():
        return path
    if path.is_absolute():
        raise RunNotFoundError(said("engine.run.no_folder", path=str(path)))
    named = folder(workspace, TRAIN.folder) / path
    if named.exists():
        return named
    raise RunNotFoundError(said("engine.run.not_found", given=str(given), path=str(path.absolute()),
                                named=str(named)))
