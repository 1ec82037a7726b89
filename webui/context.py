"""AppContext: the workspace and the long-lived helpers every tab builder receives."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from webui.jobs.boundary import ASSETS, Boundary
from webui.jobs.chat_client import ChatClient
from webui.jobs.compares import CompareManager
from webui.jobs.evals import EvalManager
from webui.jobs.exports import ExportManager
from webui.jobs.runs import RunManager
from webui.jobs.scheduler import Scheduler
from webui.jobs.serving import ServeManager


@dataclass
class AppContext:
    workspace: Path
    assets: Path
    jobs: Scheduler
    runs: RunManager
    chat: ChatClient
    exports: ExportManager
    serve: ServeManager  # the OpenAI-compatible server the Chat tab starts (one per workspace)
    evals: EvalManager
    compares: CompareManager

    @classmethod
    def create(cls, workspace: Path, assets: Path = ASSETS, scheduler: Scheduler | None = None,
               allowed: Iterable[Path] = ()) -> AppContext:
        """`scheduler`: tests pass one whose engine is a fake script. `allowed`: the --allow-path folders."""
        workspace = Path(workspace).expanduser().resolve()
        for sub in ("uploads", "runs", "exports", "configs", "models"):
            (workspace / sub).mkdir(parents=True, exist_ok=True)
        jobs = scheduler or Scheduler(workspace)
        jobs.boundary = boundary = Boundary(workspace, assets, tuple(allowed))  # the scheduler admits jobs by it
        return cls(
            workspace=workspace,
            assets=assets.resolve(),
            jobs=jobs,
            runs=RunManager(jobs),
            chat=ChatClient(workspace / "chat_worker.log", roots=boundary.roots),
            exports=ExportManager(jobs),
            serve=ServeManager(workspace / "serve.log"),
            evals=EvalManager(jobs),
            compares=CompareManager(jobs),
        )

    @property
    def uploads(self) -> Path:
        return self.workspace / "uploads"

    @property
    def configs(self) -> Path:
        return self.workspace / "configs"

    @property
    def boundary(self) -> Boundary:
        """What a request may read and write (webui.jobs.boundary): every path from the page is checked by it."""
        return self.jobs.boundary

    def readable(self, path: str | Path) -> Path:
        """A path from the page that may be read: inside the workspace, the assets or an --allow-path folder."""
        return self.boundary.readable(path)

    def writable(self, path: str | Path) -> Path:
        """A path from the page that may be written or deleted: inside the workspace only."""
        return self.boundary.writable(path)

    def local_model_dir(self, name: str) -> Path | None:
        """The checked folder of a model name, None for a hub id; PathError for a folder outside."""
        return self.boundary.local_model_dir(name)

    def gpu_present(self) -> bool:
        """Whether training could be using a GPU on this machine (nvidia-smi is on PATH)."""
        return shutil.which("nvidia-smi") is not None
