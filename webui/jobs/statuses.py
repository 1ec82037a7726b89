"""What the scheduler reads of a job folder (webui.jobs.scheduler): its status, judged where it cannot be a job,
and the last lines of its engine's output."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from engine.jobs.kinds import JobKind

START_GRACE_S = 20.0  # a job with no pid yet counts as alive this long after its status was written
LOG_TAIL_LINES = 20


def tail_lines(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 16384) -> str:
    """The last `lines` lines of a text file, reading at most `max_bytes` from its end."""
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
        data = f.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def damaged(reason: str) -> dict[str, Any]:
    """The status of a job folder that cannot be a job: listed with its reason, never started, deletable."""
    return {"state": "failed", "error": reason, "damaged": True}


def read_job_status(kind: JobKind, path: Path) -> dict[str, Any] | None:
    """The status of one entry of a kind's folder, None for what is not a job. A symlink is never followed
    (nothing in one job's entry may reach another's folder, or outside the workspace). A folder without
    status.json is nobody's to judge while it is young (a run being queued, an engine a moment before its
    first status); older than START_GRACE_S it never started, and is listed as damaged."""
    if path.name.startswith("."):
        return None
    if path.is_symlink():
        return damaged(f"{path.name} is a symbolic link, not a job folder: it is not followed.")
    if not path.is_dir():
        return None
    job = kind.job_dir(path)
    if job.status.is_file():
        return job.read_status()
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None  # deleted while scanned
    if age < START_GRACE_S:
        return None
    return damaged(f"{path.name} has no status.json: it was not written by the engine, or never started.")
