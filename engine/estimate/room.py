"""How much memory this process may still take, read from /proc and /sys (plain Python: the web process asks it
for the Train tab's verdict, the engine before the first step).

The least of: MemAvailable, the room under every cgroup v2 `memory.max` from this process's own cgroup
(/proc/self/cgroup) up to the root, the room under its cgroup v1 memory controller's `memory.limit_in_bytes` (and
its parents'), and the room under RLIMIT_AS. Each reader takes the filesystem's root, so that tests plant cgroup
trees in a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.sentences import said

V1_UNLIMITED = 1 << 62  # cgroup v1 writes "no limit" as a number near 2**63


def memory_room(root: Path = Path("/"), address_limit: int | None = None) -> tuple[int, str]:
    """(bytes, where) of RAM this process may still take: the least of MemAvailable and the room under each limit
    that applies to it (cgroup v2, cgroup v1, RLIMIT_AS; `address_limit` stands for RLIMIT_AS where given)."""
    rooms = [(_meminfo_available(root), said("engine.memory.ram"))]
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
        where = said("engine.memory.ram_limit", label=label, folder=folder.name) if folder.name else \
            said("engine.memory.ram_root_limit", label=label)
        rooms.append((max(0, limit - usage), where))
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
    return max(0, limit - size), said("engine.memory.address_space")


GPU_QUERY = ("nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits")
_gpu_answer: tuple[float, int | None] | None = None
GPU_TTL = 30.0  # seconds an answer of nvidia-smi is kept


def gpu_free(now: float | None = None) -> int | None:
    """Bytes free on the first GPU as nvidia-smi reports them (the web process imports no torch), kept GPU_TTL
    seconds; None where there is no nvidia-smi or it does not answer (no GPU: training runs on the CPU)."""
    import shutil
    import subprocess
    import time

    global _gpu_answer
    now = time.monotonic() if now is None else now
    if _gpu_answer is not None and now - _gpu_answer[0] < GPU_TTL:
        return _gpu_answer[1]
    free = None
    if shutil.which(GPU_QUERY[0]):
        try:
            out = subprocess.run(GPU_QUERY, capture_output=True, text=True, timeout=5, check=True).stdout
            free = int(out.split()[0]) * 2**20  # MiB
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            free = None  # a driver that does not answer: the estimate is shown for the CPU
    _gpu_answer = (now, free)
    return free
