"""Writing an output folder so that a killed process never leaves one that looks complete.

The folder is written as a hidden `.NAME.partial-PID` beside its target and renamed into place at the end
(`publish`); zips are written aside and renamed too. Partial folders of killed writers are removed by the
next writer (`clean_stale_partials`).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

STORED = (".safetensors", ".bin", ".pt", ".gguf")  # already dense: zip them without compression


def partial_path(out: Path) -> Path:
    """Where this process writes `out` before publishing it."""
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip `folder` (entries under its own name) into `target`, file by file from disk, then rename."""
    partial = partial_path(target)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    kind = zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED
                    archive.write(path, f"{target.stem}/{path.relative_to(folder)}", compress_type=kind)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def clean_stale_partials(out: Path) -> None:
    """Remove hidden partial folders that earlier, killed exports to `out` left behind."""
    for path in out.parent.glob(f".{out.name}.partial-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(tmp: Path, out: Path) -> None:
    """Rename the finished folder into place (an existing `out` is swapped out, then removed)."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
