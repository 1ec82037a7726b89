"""The one boundary of what the server reads and writes on a request's behalf.

Every path a request can name (a model folder, a dataset, a chat adapter folder) and every path inside a file
that a request supplies or points at (an adapter_config.json's base model; a run's config.yaml: model, dataset,
output folder) passes a Boundary before anything reads it or any engine process is started. Reads stay inside
the workspace, the bundled assets and the folders given with `--allow-path`; writes inside the workspace.
Symbolic links are followed first, so a link out of the workspace leads outside. A hub id (`name` or
`org/name` that is not an existing local path) is not a path: it passes, and the engine downloads it; so does
a hub dataset id in data.path (the same shape, but never a name with a dataset file's extension).

The Train and Chat tabs check requests here; the scheduler checks every job's config here again before it
starts the engine process (webui.jobs.scheduler), so a run started again or exported is held to the same rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import RunConfig
from engine.config_eval import BASE
from engine.datapaths import is_hub_dataset, is_hub_id
from engine.jobs.rundir import ADAPTER, EvalDir, ExportDir, JobDir, RunDir
from webui.jobs.commands import REPO_ROOT
from webui.jobs.paths import PathError, inside, no_nul

ASSETS = REPO_ROOT / "assets"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class Boundary:
    """The folders a request may read (workspace, assets, `allowed`) and write (workspace)."""

    workspace: Path
    assets: Path = ASSETS
    allowed: tuple[Path, ...] = ()  # --allow-path folders
    engine_cwd: Path = REPO_ROOT  # engine processes run here: a relative name that exists here is a path to them
    roots: tuple[Path, ...] = field(init=False)

    def __post_init__(self) -> None:
        resolved = {name: Path(getattr(self, name)).expanduser().resolve() for name in ("workspace", "assets")}
        for name, path in resolved.items():
            object.__setattr__(self, name, path)
        object.__setattr__(self, "allowed", tuple(Path(p).expanduser().resolve() for p in self.allowed))
        object.__setattr__(self, "roots", (self.workspace, self.assets, *self.allowed))

    # ---- the advice each refusal carries ----------------------------------------------------------------
    @property
    def model_fix(self) -> str:
        return f"put the model under {self.workspace / 'models'}, or start the server with --allow-path DIR"

    @property
    def file_fix(self) -> str:
        return f"put it under {self.workspace} (uploads land there), or start the server with --allow-path DIR"

    @property
    def write_fix(self) -> str:
        return f"only files under {self.workspace} can be written or deleted here"

    # ---- paths ------------------------------------------------------------------------------------------
    def readable(self, path: str | Path) -> Path:
        """A path that may be read (a relative one is relative to the workspace), resolved."""
        return inside(self.workspace / Path(path).expanduser(), *self.roots, fix=self.file_fix)

    def writable(self, path: str | Path) -> Path:
        """A path that may be written or deleted (inside the workspace only), resolved."""
        return inside(self.workspace / Path(path).expanduser(), self.workspace, fix=self.write_fix)

    # ---- models -----------------------------------------------------------------------------------------
    def local_model_dir(self, name: str, bases: tuple[Path, ...] | None = None) -> Path | None:
        """The folder a model name means, checked and resolved; None for a hub id. A relative name may be taken
        against any of `bases` (default: the workspace, then the engine's folder, where engine processes run);
        it is a hub id only when shaped like one and no such path exists there. Every existing reading of a
        path must lie inside. PathError for one outside, and for a name that is neither a path that exists nor
        a hub id."""
        text = no_nul((name or "").strip())
        if not text:
            return None
        given = Path(text).expanduser()
        readings = [given] if given.is_absolute() else [base / given for base in bases or (self.workspace,
                                                                                            self.engine_cwd)]
        existing = [path for path in readings if path.exists() or path.is_symlink()]
        if not existing and is_hub_id(text):
            return None
        found = [inside(path, *self.roots, fix=self.model_fix) for path in existing or readings[:1]]
        if not found[0].is_dir():
            raise PathError(f"{text} is neither a model folder nor a hub id: choose a folder under "
                            f"{self.workspace / 'models'}, or a hub id such as org/name.")
        return found[0]

    def model(self, name: str, bases: tuple[Path, ...] | None = None) -> str:
        """A model name as an engine process should get it: a hub id as it is, a local folder as its resolved
        absolute path, so every process reads the folder that was checked (PathError as local_model_dir)."""
        folder = self.local_model_dir(name, bases)
        return (name or "").strip() if folder is None else str(folder)

    # ---- datasets ---------------------------------------------------------------------------------------
    def dataset(self, name: str) -> str:
        """A dataset the page names as an engine process should get it: a hub dataset id as it is, a file or
        folder (a relative one is relative to the workspace) as its checked, resolved absolute path; PathError
        for one outside. A name is a hub id only when shaped like one and no such path exists in the workspace."""
        text = no_nul((name or "").strip())
        given = self.workspace / Path(text).expanduser()
        if not Path(text).expanduser().is_absolute() and not given.exists() and is_hub_dataset(text):
            return text
        return str(self.readable(given))

    def run_dataset(self, path: str, folder: Path | None = None) -> None:
        """PathError unless a data.path entry of a run config is a hub dataset id, or an absolute path inside
        (`folder`: the config's own folder, where a relative entry would be read)."""
        given = Path(path).expanduser()
        if not given.is_absolute() and is_hub_dataset(path) and not (folder and (folder / given).exists()):
            return
        self.readable(absolute(path, "data.path"))

    # ---- paths inside files -----------------------------------------------------------------------------
    def config(self, config: RunConfig, folder: Path | None = None) -> RunConfig:
        """A run's config once its model, dataset and output folder are inside, with the model named as
        `model` names it. A relative model name is checked against the config's own `folder` (where given)
        too, as the engine reads it; the dataset and output folder must be absolute paths (the page and the
        engine write them so), since engine processes would take a relative one against different folders. Every
        dataset of a list data.path is checked; a hub dataset id passes, as a hub model id does; model.adapter (a
        starting run) must be an absolute path inside."""
        model = self.run_model(config, folder)
        for source in config.data.sources():
            if source.path:
                self.run_dataset(source.path, folder)
        self.writable(absolute(config.output_dir, "output_dir"))
        if config.model.adapter:  # the finished run it starts from (model.adapter)
            self.readable(absolute(config.model.adapter, "model.adapter"))
        return config.model_copy(update={"model": config.model.model_copy(update={"name_or_path": model})})

    def run_model(self, config: RunConfig, folder: Path | None = None) -> str:
        """The checked model of a run's config (`folder`: the config's own folder)."""
        bases = tuple(base for base in (folder, self.workspace, self.engine_cwd) if base is not None)
        return self.model(config.model.name_or_path, bases)

    def run(self, run: RunDir) -> RunConfig:
        """The config of a run folder (inside the workspace), checked (ValueError when it is damaged)."""
        run = RunDir(self.writable(run.path))
        return self.config(run.read_config(), run.path)

    def chat_base(self, folder: str | Path) -> str:
        """The base model the chat worker loads under `folder` (a run folder, its adapter/, or a PEFT adapter
        folder), checked: the run's config.yaml model where there is a run, else the base_model_name_or_path of
        adapter_config.json (read as JSON here, before any process sees it). The worker is given this name."""
        folder = self.readable(folder)
        adapter = folder if (folder / ADAPTER_CONFIG).is_file() else folder / ADAPTER
        run = RunDir(folder.parent if adapter == folder and folder.name == ADAPTER else folder)
        if run.config.is_file():
            run = RunDir(self.readable(run.path))
            return self.run_model(run.read_config(), run.path)
        base = adapter_config(adapter).get("base_model_name_or_path")
        if not isinstance(base, str) or not base.strip():
            raise PathError(f"{adapter / ADAPTER_CONFIG} names no base model (base_model_name_or_path): "
                            "load the run folder the adapter was trained in.")
        return self.model(base)

    def admit(self, job: JobDir) -> None:
        """Raise PathError (ValueError for a damaged config) unless every path the job's engine process would
        read lies inside: a run's model, dataset and output folder; an export's run folder and that run's; an
        evaluation's models, base, test set and folder."""
        if isinstance(job, EvalDir):
            self.evaluation(job)
        if isinstance(job, ExportDir):
            job = RunDir(self.writable(absolute(job.read_config().run_dir, "run_dir")))
        if isinstance(job, RunDir):
            self.run(job)

    def evaluation(self, job: EvalDir) -> None:
        """PathError unless every model, the base, the test set and the output folder of an evaluation lie inside
        (each as an absolute path: the engine runs elsewhere)."""
        config = job.read_config()
        for model in config.models:
            if model != BASE:
                self.readable(absolute(model, "models"))
        if config.base:
            self.model(config.base)
        for source in config.data.sources() if config.data is not None else ():
            if source.path:
                self.run_dataset(source.path)
        if config.validation_of:
            self.readable(absolute(config.validation_of, "validation_of"))
        if config.output_dir:
            self.writable(absolute(config.output_dir, "output_dir"))


def absolute(path: str, key: str) -> Path:
    """A path a config file names, which must be absolute (or start with ~); PathError otherwise."""
    given = Path(path).expanduser()
    if not given.is_absolute():
        raise PathError(f"{key} {path} is a relative path: write it as an absolute path, since engine processes "
                        "would take it against different folders.")
    return given


def adapter_config(folder: Path) -> dict:
    """adapter_config.json of an adapter folder as a mapping ({} when there is none)."""
    path = folder / ADAPTER_CONFIG
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise PathError(f"{path} is not valid JSON ({error.__class__.__name__}): replace it.") from None
    if not isinstance(config, dict):
        raise PathError(f"{path} does not hold a JSON object: replace it.")
    return config
