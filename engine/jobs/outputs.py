"""Writing an output folder so that a killed process never leaves one that looks complete.

The folder is written as a hidden `.NAME.partial-PID` beside its target and renamed into place at the end
(`publish`); zips are written aside and renamed too. Partial folders of killed writers are removed by the
next writer (`clean_stale_partials`), and by the web server when it starts (`clean_leftovers`).
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

STORED = (".safetensors", ".bin", ".pt", ".gguf")  # already dense: zip them without compression


def partial_path(out: Path) -> Path:
    """Where this process writes `out` before publishing it."""
    return out.parent / f".{out.name}.partial-{os.getpid()}"


def regular_files(folder: Path) -> list[Path]:
    """Every regular file under `folder`, sorted; symbolic links (to files or folders, inside or out) are neither
    listed nor followed: what a job copies or packs is only what lies in its folder."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [name for name in dirs if not os.path.islink(os.path.join(root, name))]
        found += [Path(root, name) for name in files if Path(root, name).is_file()
                  and not os.path.islink(os.path.join(root, name))]
    return sorted(found)


def links_in(folder: Path) -> list[Path]:
    """The symbolic links under `folder` (not followed), sorted."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        found += [Path(root, name) for name in (*dirs, *files) if os.path.islink(os.path.join(root, name))]
    return sorted(found)


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip the regular files of `folder` (entries under its own name) into `target`, file by file from disk, then
    rename; a symbolic link is never packed (see `regular_files`)."""
    partial = partial_path(target)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for path in regular_files(folder):
                kind = zipfile.ZIP_STORED if path.suffix in STORED else zipfile.ZIP_DEFLATED
                archive.write(path, f"{target.stem}/{path.relative_to(folder)}", compress_type=kind)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


LEFTOVER = re.compile(r"^\.(?P<target>.+)\.(?:partial|old)-(?P<pid>\d+)$")  # .NAME.partial-PID, .NAME.old-PID


def clean_stale_partials(out: Path, *siblings: str) -> list[Path]:
    """Remove what killed writers of `out` (and of the `siblings` beside it, such as its zips) left behind."""
    return clean_leftovers(out.parent, {out.name, *siblings})


def clean_leftovers(folder: Path, targets: set[str] | None = None) -> list[Path]:
    """Remove the partial and swapped-out entries (`.NAME.partial-PID`, `.NAME.old-PID`) in `folder` whose
    writer is gone, for every NAME or only those in `targets`; returns what was removed."""
    removed = []
    for path in folder.glob(".*") if folder.is_dir() else ():
        match = LEFTOVER.match(path.name)
        if not match or (targets is not None and match["target"] not in targets) or _alive(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


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
