"""Base models the page offers (bundled demo, recently used, local folders) and what their config.json
and safetensors headers say about them, read cheaply (no weights, no torch)."""

from __future__ import annotations

import html
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.jobs.rundir import read_json, write_json_atomic
from engine.model import config_json, shapes

log = logging.getLogger(__name__)

RECENT_FILE = "recent_models.json"
RECENT_LIMIT = 10
HUB_CHECK_SECONDS = 3.0  # how long the quick network check waits for the hub's host
HUB_CHECK_TTL = 60.0  # how long its answer is trusted


@dataclass
class ModelInfo:
    name: str
    architecture: str | None = None
    model_type: str | None = None
    params: int | None = None
    params_estimated: bool = False
    chat_template: bool | None = None  # None: unknown (not available offline)
    local_dir: Path | None = None
    offline: bool = False  # not local, not in the hub cache, and the hub cannot be reached
    error: str | None = None  # a damaged config.json or weights file, in one sentence
    tokenizer: bool | None = None  # a local folder holds tokenizer files; None: not a local folder (not known here)

    def markdown(self, text: Callable[..., str] = lambda key, **_values: key) -> str:
        """The one-line summary; `text(key, **values)` supplies the words in the visitor's language."""
        if self.error is not None:
            return f"<span class='wb-error'>{html.escape(self.error)}</span>"
        if self.tokenizer is False:
            return f"<span class='wb-error'>{html.escape(text('msg.model_no_tokenizer', name=self.name))}</span>"
        if self.architecture is None:
            return text("msg.model_offline" if self.offline else "msg.model_remote", name=self.name)
        params = "?" if self.params is None else ("~" if self.params_estimated else "") + human_count(self.params)
        template = text("msg.template_present" if self.chat_template else "msg.template_fallback")
        return text("msg.model_info", architecture=self.architecture, model_type=self.model_type, params=params,
                    template=template)


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def bundled_models(assets: Path) -> list[Path]:
    """Demo models shipped under assets/models/<name>/config.json."""
    return sorted(p.parent for p in (assets / "models").glob("*/config.json"))


def recent_models(workspace: Path) -> list[str]:
    """The models chosen lately; a damaged list (not JSON, or not a list of names) is forgotten, with a log line."""
    try:
        models = read_json(workspace / RECENT_FILE)
    except ValueError as error:
        log.warning("%s is ignored: %s", RECENT_FILE, error)
        return []
    models = models.get("models", []) if isinstance(models, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        log.warning("%s is ignored: it does not hold a list of model names", RECENT_FILE)
        return []
    return models


def remember_model(workspace: Path, name: str) -> None:
    models = [name] + [m for m in recent_models(workspace) if m != name]
    write_json_atomic(workspace / RECENT_FILE, {"models": models[:RECENT_LIMIT]})


def model_choices(workspace: Path, assets: Path) -> list[str]:
    """Dropdown entries: bundled demo models, then recent ones, then folders under WORKSPACE/models, then the merged
    models the Export tab wrote (WORKSPACE/exports/JOB/model), to train on next."""
    entries = [str(p) for p in bundled_models(assets)] + recent_models(workspace)
    entries += [str(p.parent) for p in sorted((workspace / "models").glob("*/config.json"))]
    entries += [str(p.parent) for p in sorted((workspace / "exports").glob("*/model/config.json"))]
    return list(dict.fromkeys(entries))


def model_folder(name: str, local_dir: Path | None) -> Path | None:
    """Where the model's config.json lies without any download: `local_dir` (a folder the path boundary let in),
    else the hub cache's snapshot of hub id `name`. Never `name` as a folder: it has not passed the boundary."""
    folder = local_dir if local_dir is not None else config_json.cached_folder(name)
    return folder if folder is not None and (folder / config_json.CONFIG_JSON).is_file() else None


def model_config_json(name: str, local_dir: Path | None) -> dict | None:
    """The model's config.json (local folder or hub cache), or None where it would have to be downloaded."""
    folder = model_folder(name, local_dir)
    return config_json.read(folder) if folder is not None else None


_hub_answer: tuple[float, bool] | None = None
_hub_lock = threading.Lock()


def hub_offline() -> bool:
    """True when the Hugging Face hub cannot be asked: HF_HUB_OFFLINE is set, or its host (or the https proxy)
    does not answer within HUB_CHECK_SECONDS. The network answer is kept for HUB_CHECK_TTL seconds."""
    global _hub_answer
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    with _hub_lock:
        if _hub_answer is not None and time.monotonic() - _hub_answer[0] < HUB_CHECK_TTL:
            return _hub_answer[1]
    offline = not _reachable(*_hub_address(), timeout=HUB_CHECK_SECONDS)
    with _hub_lock:
        _hub_answer = (time.monotonic(), offline)
    return offline


def _hub_address() -> tuple[str, int]:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlsplit(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def _reachable(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection opens within `timeout` seconds (name lookup included: it runs in a thread)."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


# the files a tokenizer loads from (fast, SentencePiece under any name: tokenizer.model, spiece.model,
# sentencepiece.bpe.model; BPE or WordPiece vocabularies, tiktoken); tokenizer_config.json alone is not one
TOKENIZER_FILES = ("tokenizer.json", "*.model", "vocab.*", "*.tiktoken")


def has_tokenizer(folder: Path) -> bool:
    """Whether a model folder holds tokenizer files (a folder copied without them cannot train or chat)."""
    return any(next(folder.glob(pattern), None) is not None for pattern in TOKENIZER_FILES)


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        config = read_json(folder / "tokenizer_config.json")
    except ValueError:  # a damaged tokenizer_config.json: the model's own loading says so
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def model_info(name: str, local_dir: Path | None) -> ModelInfo:
    """What the page shows once a model is chosen; `local_dir` is a checked local folder or None (hub id)."""
    folder = model_folder(name, local_dir)
    info = ModelInfo(name=name, local_dir=local_dir)
    if folder is None:
        return info
    try:
        config = config_json.read(folder) or {}
        info.params = config_json.safetensors_params(folder)
    except config_json.ModelFileError as error:
        info.error = str(error)
        return info
    architectures = config.get("architectures")
    info.architecture = str(architectures[0]) if isinstance(architectures, list) and architectures else "unknown"
    info.model_type = str(config.get("model_type", "unknown"))
    if info.params is None:
        info.params, info.params_estimated = shapes.estimate_total(config), True
    info.chat_template = has_chat_template(folder)
    if local_dir is not None:
        info.tokenizer = has_tokenizer(folder)
    return info
