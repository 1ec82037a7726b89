"""Export jobs: `python -m engine export RUN --out DIR --zip --json` in its own process; its JSON lines
are collected by a thread so any page (or a reload) can follow the job."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webui.engine_cli import REPO_ROOT, engine_argv
from webui.paths import inside, safe_name


@dataclass
class ExportJob:
    run: str
    out: Path
    started: float = field(default_factory=time.time)
    lines: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None  # the final status line

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def failed(self) -> bool:
        return self.done and self.result.get("state") != "completed"


class ExportManager:
    def __init__(self, exports_dir: Path, repo_root: Path = REPO_ROOT,
                 engine: Callable[..., list[str]] = engine_argv):
        self.exports_dir = Path(exports_dir).resolve()
        self.repo_root = repo_root
        self.engine = engine
        self.jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def start(self, run_dir: Path, dtype: str, shard_gb: float) -> ExportJob:
        """Start exporting a run (one export per run at a time)."""
        name = safe_name(run_dir.name)
        with self._lock:
            job = self.jobs.get(name)
            if job is not None and not job.done:
                return job
            out = inside(self.exports_dir / f"{name}-{dtype}", self.exports_dir)
            job = self.jobs[name] = ExportJob(run=name, out=out)
        argv = self.engine("export", str(run_dir), "--out", str(out), "--dtype", dtype,
                           "--max-shard-size", f"{shard_gb:g}GB", "--zip", "--json", "--overwrite")
        proc = subprocess.Popen(argv, cwd=self.repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._follow, args=(job, proc), name=f"export-{name}", daemon=True).start()
        return job

    def _follow(self, job: ExportJob, proc: subprocess.Popen) -> None:
        result = None
        for line in proc.stdout:
            if not line.strip().startswith("{"):
                job.lines.append(line.rstrip())
                continue
            message = json.loads(line)
            if message.get("kind") == "status":
                result = message
            else:
                job.lines.append(str(message.get("message", message)))
        stderr = proc.stderr.read()
        code = proc.wait()
        if result is None:
            tail = [line for line in stderr.splitlines() if line.strip()]
            reason = tail[-1] if tail else f"the export process exited with code {code}."
            result = {"state": "failed", "error": reason}
        job.result = result

    def job(self, run: str) -> ExportJob | None:
        return self.jobs.get(run)

    def download_paths(self, job: ExportJob) -> tuple[Path | None, Path | None]:
        """The merged-model zip and adapter zip of a finished job, each checked to lie in the exports folder."""
        result = job.result or {}
        paths = []
        for key in ("zip", "adapter_zip"):
            value = result.get(key)
            paths.append(inside(value, self.exports_dir) if value and Path(value).is_file() else None)
        return paths[0], paths[1]
