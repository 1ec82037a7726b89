"""AppContext: the workspace and the long-lived helpers every tab builder receives."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from webui.chat_client import ChatClient
from webui.engine_cli import REPO_ROOT
from webui.exports import ExportManager
from webui.jobs import Scheduler
from webui.paths import inside
from webui.runs import RunManager

ASSETS = REPO_ROOT / "assets"


@dataclass
class AppContext:
    workspace: Path
    assets: Path
    jobs: Scheduler
    runs: RunManager
    chat: ChatClient
    exports: ExportManager

    @classmethod
    def create(cls, workspace: Path, assets: Path = ASSETS, scheduler: Scheduler | None = None) -> AppContext:
        """`scheduler`: tests pass one whose engine is a fake script."""
        workspace = Path(workspace).expanduser().resolve()
        for sub in ("uploads", "runs", "exports", "configs", "models"):
            (workspace / sub).mkdir(parents=True, exist_ok=True)
        jobs = scheduler or Scheduler(workspace)
        return cls(
            workspace=workspace,
            assets=assets.resolve(),
            jobs=jobs,
            runs=RunManager(jobs),
            chat=ChatClient(workspace / "chat_worker.log"),
            exports=ExportManager(jobs),
        )

    @property
    def uploads(self) -> Path:
        return self.workspace / "uploads"

    @property
    def configs(self) -> Path:
        return self.workspace / "configs"

    def readable(self, path: str | Path) -> Path:
        """A path from the page that may be read: inside the workspace or the bundled assets."""
        return inside(path, self.workspace, self.assets)

    def writable(self, path: str | Path) -> Path:
        """A path from the page that may be written or deleted: inside the workspace only."""
        return inside(path, self.workspace)

    def local_model_dir(self, name: str) -> Path | None:
        """A model given as a folder (absolute, or relative to the workspace) that exists; None for hub ids.

        Raises PathError for folders outside the workspace and assets.
        """
        text = (name or "").strip()
        if not text:
            return None
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.workspace / candidate
        if candidate.is_dir() or text.startswith(("/", ".", "~")):
            return self.readable(candidate)
        return None

    def gpu_present(self) -> bool:
        """Whether training could be using a GPU on this machine (nvidia-smi is on PATH)."""
        return shutil.which("nvidia-smi") is not None
