"""Schema versions of the files a job folder keeps, and the steps that bring an older file to today's shape.

Plain Python (no engine imports): the web UI reads run folders through it. A run folder outlives the code
that wrote it, so every reader of a config.yaml or a status.json passes the raw mapping through
`migrate_config` / `migrate_status` before it trusts a key, as nanochat patches the keys an old checkpoint's
config lacks before it builds the model. Each file kind has a table of steps keyed by the version a step
upgrades from; the next rename of a key adds one step (and bumps the version its writer stamps), and every
older folder then reaches today's shape through the same chain.

Version 1 is every file written before versions were stamped (tests/fixtures/old_workspace holds such a run):
its keys are today's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Raw = dict[str, Any]


class SchemaError(ValueError):
    """A file whose schema version this code cannot read; `sentence(subject)` says so in one sentence."""

    def __init__(self, file: str, key: str, version: Any, current: int):
        self.file, self.key, self.version, self.current = file, key, version, current
        super().__init__(self.sentence(f"this {file}"))

    def sentence(self, subject: str) -> str:
        if isinstance(self.version, int) and not isinstance(self.version, bool) and self.version > self.current:
            return (f"{subject} was written by a newer PEFT Workbench ({self.key} {self.version}; this one reads up "
                    f"to {self.current}): update PEFT Workbench to open it.")
        return f"{subject} has {self.key} {self.version!r}, which is no schema version (a whole number from 1)."


def _same_keys(fields: Raw) -> Raw:
    """1 -> 2: versions began to be stamped; no key changed."""
    return fields


@dataclass(frozen=True)
class FileKind:
    """One kind of file in a job folder: the key its version is stamped under, today's version, and the steps."""

    file: str
    key: str
    version: int
    steps: dict[int, Callable[[Raw], Raw]]  # version v -> the step that turns v's fields into v + 1's

    def stamp(self, fields: Raw) -> Raw:
        """`fields` as a writer stores them today: the version first, so a reader of the file sees it at once."""
        return {self.key: self.version, **fields}

    def upgrade(self, raw: Raw) -> Raw:
        """Today's fields of a file of any version this code knows (the version key taken out: the writer stamps
        it). Raises SchemaError for a version from a newer release, or one that is no version at all."""
        if not isinstance(raw, dict):
            raise ValueError(f"{self.file} holds a {type(raw).__name__}, not a mapping of fields.")
        version = raw.get(self.key, 1)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= self.version:
            raise SchemaError(self.file, self.key, version, self.version)
        fields = {name: value for name, value in raw.items() if name != self.key}
        for step in range(version, self.version):
            fields = self.steps[step](fields)
        return fields


# A run's config (RunConfig) and an export's (ExportConfig) share the kind: a step meets both shapes.
CONFIG = FileKind("config.yaml", "schema_version", 2, {1: _same_keys})
STATUS = FileKind("status.json", "schema", 2, {1: _same_keys})


def migrate_config(raw: Raw) -> Raw:
    """A config.yaml's mapping of any known version as today's RunConfig/ExportConfig fields."""
    return CONFIG.upgrade(raw)


def migrate_status(raw: Raw) -> Raw:
    """A status.json's mapping of any known version as today's fields."""
    return STATUS.upgrade(raw)
