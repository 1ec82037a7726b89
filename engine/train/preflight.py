"""Before the first step: will one training step fit in memory? A lower bound, not a forecast.

The bound counts only what a step cannot avoid: the weights, the gradients and Adam states of what trains, the
logits with their fp32 loss copy, a few activations per layer, and the attention mask (a padded batch: one square
per row; a packed batch, one square over all its tokens). The logits are those of one chunk of positions where
the loss is taken over trained positions in chunks (engine/train/logits.py), else those of the whole largest
batch (the preference stage, and model families that keep the full computation). A configuration whose bound
exceeds the memory the machine has cannot train; it is refused with one sentence before the first step, where
it would otherwise die mid-allocation (batch 8192 at cutoff 8192 once asked torch for 488 GiB). A later issue
makes the estimate precise enough to warn about configurations that merely come close.

Virtual tokens (prefix, prompt and P-tuning) are counted: prompt and P-tuning put `num_virtual_tokens` in front
of every row, prefix tuning keeps their keys and values in every layer, and a million of them cannot train; that is
refused before the model is loaded (`check_virtual_tokens`, from config.json alone). The sentence names the lever
of the term that dominates the bound: method.r for LoRA's optimizer states, method.num_virtual_tokens for virtual
tokens, train.batch_size and train.cutoff_len for what a batch's tokens take.

The memory this process may take is the least of: MemAvailable, the room under every cgroup v2 `memory.max` from
this process's own cgroup (/proc/self/cgroup) up to the root, the room under its cgroup v1 memory controller's
`memory.limit_in_bytes` (and its parents'), and the room under RLIMIT_AS. Each reader takes the filesystem's
root, so that tests plant cgroup trees in a folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import MethodConfig
from engine.jobs.failures import EngineError
from engine.train.batching import first_fit
from engine.train.logits import chunk_len

GIB = 2**30
ACTIVATIONS_PER_LAYER = 8  # hidden-sized tensors a decoder layer keeps per token for backward, at least
ADAM_BYTES = 4 + 8  # fp32 gradient + two fp32 moments per trainable parameter
VIRTUAL = ("prefix", "prompt", "ptuning")  # methods that add virtual tokens
V1_UNLIMITED = 1 << 62  # cgroup v1 writes "no limit" as a number near 2**63


class MemoryCheckError(EngineError):
    """A configuration that cannot fit; the message says what to lower."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes one training step needs at least, by what needs them."""

    tokens: int  # in the largest batch
    longest: int  # the longest row, in tokens
    weights: int
    optimizer: int
    activations: int
    logits: int
    attention: int
    virtual: int = 0  # what the virtual tokens add to the activations, logits and attention mask

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.logits + self.attention + self.virtual

    def largest(self) -> tuple[str, int]:
        parts = {"the attention mask": self.attention, "the logits": self.logits, "the activations": self.activations,
                 "the weights": self.weights, "the optimizer states": self.optimizer,
                 "the virtual tokens' activations": self.virtual}
        return max(parts.items(), key=lambda item: item[1])


def largest_batch(lengths: list[int], batch_size: int, packing: bool, pack_len: int | None = None) -> tuple[int, int]:
    """(rows, tokens per row) of the largest batch: packed, the longest rows first-fit into rows of at most
    `pack_len` tokens (None: one row); padded, `batch_size` rows of the longest length."""
    longest = sorted(lengths, reverse=True)[:batch_size]
    if packing:
        bins = [sum(longest[i] for i in indices) for indices in first_fit(longest, pack_len)]
        return len(bins), max(bins, default=0)
    return len(longest), max(longest, default=0)


@dataclass(frozen=True)
class Shape:
    """The sizes the bound needs, from a loaded model's config or from config.json."""

    hidden: int
    layers: int
    vocab: int
    kv_width: int  # one layer's key (or value) width: key/value heads * head_dim
    element: int  # bytes of one activation


def shape_of(config: Any, element: int) -> Shape:
    """A Shape from a transformers config or a config.json dict (a decoder's text config)."""
    get = (lambda key, default=None: config.get(key, default)) if isinstance(config, dict) else (
        lambda key, default=None: getattr(config, key, default))
    hidden, heads = int(get("hidden_size")), int(get("num_attention_heads") or 1)
    head_dim = int(get("head_dim") or hidden // heads)
    kv_heads = int(get("num_key_value_heads") or heads)
    return Shape(hidden, int(get("num_hidden_layers")), int(get("vocab_size")), kv_heads * head_dim, element)


def batch_bytes(shape: Shape, rows: int, length: int, keys: int) -> tuple[int, int, int]:
    """(activations, logits, attention mask) of `rows` rows of `length` tokens attending to `keys` positions."""
    tokens = rows * length
    return (tokens * shape.hidden * shape.layers * ACTIVATIONS_PER_LAYER * shape.element,
            tokens * shape.vocab * (shape.element + 4),
            rows * length * keys)  # a boolean mask: one byte per query-key pair


def virtual_bytes(shape: Shape, method: MethodConfig | None, rows: int, length: int) -> int:
    """What `method`'s virtual tokens add to a batch of `rows` rows of `length` tokens: prompt and P-tuning
    lengthen every row by them, prefix tuning adds their keys and values in every layer and row."""
    if method is None or method.name not in VIRTUAL:
        return 0
    virtual = method.num_virtual_tokens
    if method.name == "prefix":
        cache = rows * virtual * shape.layers * 2 * shape.kv_width * shape.element
        return cache + rows * length * virtual  # and the mask's columns for them
    longer = batch_bytes(shape, rows, length + virtual, length + virtual)
    return sum(longer) - sum(batch_bytes(shape, rows, length, length))


def estimate(model: Any, trainable: int, lengths: list[int], batch_size: int, packing: bool,
             pack_len: int | None = None, method: MethodConfig | None = None, chunked: bool = False) -> StepMemory:
    """The lower bound for `model` (a loaded model, adapters applied) on rows of `lengths` tokens; `chunked`: the
    loss projects one chunk of positions at a time (engine/train/logits.py), not the whole batch."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    shape = shape_of(config, next(model.parameters()).element_size())
    rows, length = largest_batch(lengths, batch_size, packing, pack_len)
    activations, logits, attention = batch_bytes(shape, rows, length, length)
    if chunked:
        tokens = rows * length
        logits = min(tokens, chunk_len(tokens, shape.vocab, shape.hidden)) * shape.vocab * (shape.element + 4)
    return StepMemory(
        tokens=rows * length,
        longest=max(lengths, default=0),
        weights=sum(p.numel() * p.element_size() for p in model.parameters()),
        optimizer=trainable * ADAM_BYTES,
        activations=activations,
        logits=logits,
        attention=attention,
        virtual=virtual_bytes(shape, method, rows, length),
    )


def available_memory(root: Path = Path("/")) -> tuple[int, str]:
    """(bytes free, where): the GPU's free memory when training runs there, else the RAM this process may still
    take (memory_room)."""
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return free, "GPU memory"
    return memory_room(root)


def memory_room(root: Path = Path("/"), address_limit: int | None = None) -> tuple[int, str]:
    """(bytes, where) of RAM this process may still take: the least of MemAvailable and the room under each limit
    that applies to it (cgroup v2, cgroup v1, RLIMIT_AS; `address_limit` stands for RLIMIT_AS where given)."""
    rooms = [(_meminfo_available(root), "RAM")]
    for room in (cgroup_v2_room(root), cgroup_v1_room(root), address_space_room(root, address_limit)):
        if room is not None:
            rooms.append(room)
    return min(rooms, key=lambda room: room[0])


def _meminfo_available(root: Path) -> int:
    try:
        with open(root / "proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _own_cgroups(root: Path) -> dict[str, str]:
    """{controller ("" for cgroup v2): path} of this process, from /proc/self/cgroup."""
    try:
        text = (root / "proc/self/cgroup").read_text(encoding="utf-8")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path
    return found


def _walk_up(mount: Path, path: str) -> list[Path]:
    """The cgroup folders from `path` up to the mount's root (those that exist: a container may mount its own
    cgroup as the root, so that the path /proc/self/cgroup names is not under the mount)."""
    parts = [part for part in path.strip("/").split("/") if part and part != ".."]
    folders = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [folder for folder in folders if folder.is_dir()]


def _int_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):  # no such file, or "max": no limit here
        return None


def _smallest_room(folders: list[Path], limit_file: str, usage_file: str, label: str,
                   unlimited: int | None = None) -> tuple[int, str] | None:
    rooms = []
    for folder in folders:
        limit = _int_file(folder / limit_file)
        if limit is None or (unlimited is not None and limit >= unlimited):
            continue
        usage = _int_file(folder / usage_file) or 0
        rooms.append((max(0, limit - usage), f"RAM (the {label} limit of {folder.name or 'the root'})"))
    return min(rooms, key=lambda room: room[0], default=None)


def cgroup_v2_room(root: Path = Path("/")) -> tuple[int, str] | None:
    """The least room under memory.max of this process's cgroup v2 and its parents; None where none is set."""
    path = _own_cgroups(root).get("")
    if path is None:
        return None
    mount = root / "sys/fs/cgroup"
    return _smallest_room(_walk_up(mount, path), "memory.max", "memory.current", "cgroup")


def cgroup_v1_room(root: Path = Path("/")) -> tuple[int, str] | None:
    """The least room under memory.limit_in_bytes of this process's cgroup v1 memory controller and its
    parents; None where there is no such controller or no limit."""
    path = _own_cgroups(root).get("memory")
    if path is None:
        return None
    mount = root / "sys/fs/cgroup/memory"
    return _smallest_room(_walk_up(mount, path), "memory.limit_in_bytes", "memory.usage_in_bytes", "cgroup v1",
                          unlimited=V1_UNLIMITED)


def address_space_room(root: Path = Path("/"), limit: int | None = None) -> tuple[int, str] | None:
    """RLIMIT_AS (or `limit`) less this process's address space now (VmSize); None where it is unlimited."""
    if limit is None:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
    size = 0
    try:
        for line in (root / "proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmSize:"):
                size = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return max(0, limit - size), "address space (RLIMIT_AS, ulimit -v)"


def levers(part: str, batch_size: int, cutoff_len: int, packing: bool, longest: int,
           method: MethodConfig | None) -> list[str]:
    """What lowers `part`, the term that dominates the bound."""
    name = method.name if method is not None else ""
    if part == "the virtual tokens' activations" or (part == "the optimizer states" and name in VIRTUAL):
        return [f"lower method.num_virtual_tokens (now {method.num_virtual_tokens})"]  # type: ignore[union-attr]
    if part == "the optimizer states" and name in ("lora", "dora", "qlora"):
        return [f"lower method.r (now {method.r})", "target fewer method.target_modules"]  # type: ignore
    if part == "the optimizer states" and name == "freeze":
        return [f"lower method.freeze_trainable_layers (now {method.freeze_trainable_layers})"]  # type: ignore
    if part in ("the optimizer states", "the weights"):
        return ["choose a smaller model, or a method that trains fewer parameters (method.name: lora, or qlora "
                "to load the weights in 4 bits)"]
    found = [f"lower train.batch_size (now {batch_size})"]
    if longest >= cutoff_len:  # rows are cut there: a lower cutoff shortens them
        found.append(f"lower train.cutoff_len (now {cutoff_len})")
    if packing:
        found.append("set train.packing: off")
    return found


def check_fits(step: StepMemory, available: int, where: str, batch_size: int, cutoff_len: int, packing: bool,
               method: MethodConfig | None = None) -> str:
    """A log line with the bound; MemoryCheckError when the step cannot fit. The weights are loaded already, so
    what must still fit in `available` is the rest."""
    still_needed = step.total - step.weights
    line = (f"memory check: one step needs at least {step.total / GIB:.2f} GiB ({step.tokens:,} tokens in the largest "
            f"batch); {available / GIB:.1f} GiB of {where} is free beside the loaded weights")
    if still_needed <= available:
        return line
    part, size = step.largest()
    packed = f" packed into rows of {step.tokens:,} tokens in all" if packing else ""
    found = levers(part, batch_size, cutoff_len, packing, step.longest, method)
    raise MemoryCheckError(
        f"This configuration cannot fit: one step needs at least {step.total / GIB:,.1f} GiB ({part} of the largest "
        f"batch{packed} alone takes {size / GIB:,.1f} GiB) and {available / GIB:,.1f} GiB of {where} is free: "
        f"{', or '.join(found)}.")


def check_virtual_tokens(config: Any, lengths: list[int], available: tuple[int, str] | None = None) -> str | None:
    """Before the model is loaded: MemoryCheckError where the virtual tokens alone (their parameters with
    gradients and Adam states, and what they add to the largest batch) cannot fit; a log line where they can,
    None for a method without virtual tokens or a model whose config.json gives no sizes."""
    from engine.model import config_json

    method = config.method
    if method.name not in VIRTUAL:
        return None
    found = config_json.model_config_json(config.model.name_or_path, config.model.revision)
    try:
        shape = shape_of(found, 2) if found is not None else None  # 16-bit activations: a lower bound
    except (TypeError, ValueError):
        shape = None
    if shape is None:
        return None
    per_token = shape.layers * 2 * shape.kv_width if method.name == "prefix" else shape.hidden
    parameters = method.num_virtual_tokens * per_token * (4 + ADAM_BYTES)  # fp32 weights, gradient and moments
    needed = parameters + virtual_bytes(shape, method, 1, max(lengths, default=0))  # one row, packed or not
    free, where = available if available is not None else available_memory()
    if needed <= free:
        return f"memory check: the virtual tokens need at least {needed / GIB:.2f} GiB"
    raise MemoryCheckError(
        f"This configuration cannot fit: its {method.num_virtual_tokens:,} virtual tokens alone need at least "
        f"{needed / GIB:,.1f} GiB and {free / GIB:,.1f} GiB of {where} is free: lower method.num_virtual_tokens "
        f"(now {method.num_virtual_tokens}).")
