"""The workspace of tests/fixtures/old_workspace (a run written before schema versions), copied and relocated.

The fixture recorded two absolute prefixes: the checkout it was trained in (/work/main) and the workspace it
wrote (/tmp/oldws). A copy gets them replaced by this checkout's and the copy's, as moving a workspace to
another machine would; nothing else in it changes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "old_workspace"
RUN_NAME = "lora-before-layout"
RECORDED = {"/work/main": str(ROOT), "/tmp/oldws": None}  # None: the copy's own folder
TEXT_SUFFIXES = (".yaml", ".json", ".jsonl", ".log", ".md", ".jinja")


def copy_old_workspace(dest: Path) -> Path:
    """Copy the fixture's workspace to `dest` (which must not exist) with both prefixes relocated; returns dest."""
    shutil.copytree(FIXTURE, dest)
    targets = {prefix: target or str(dest) for prefix, target in RECORDED.items()}
    pattern = re.compile("|".join(re.escape(prefix) for prefix in targets))
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8")
            path.write_text(pattern.sub(lambda match: targets[match.group(0)], text), encoding="utf-8")
    return dest
