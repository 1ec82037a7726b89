"""Every ```yaml block of the README validates against the schema it is written for.

Each block is preceded by a marker line the test reads, so a new block must say what it is:

    <!-- yaml: run -->                     a whole run config (RunConfig), saved in the repository's root
    <!-- yaml: run fragment -->            sections merged over the README's first whole run config
    <!-- yaml: eval in assets -->          an evaluation config (EvalConfig) saved in assets/
    <!-- yaml: compare in assets -->       a comparison config (CompareConfig) saved in assets/
    <!-- yaml: run fragment, schema only -->   keys and types only (it names a file of the reader's own)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from engine.config import RunConfig, parse_config
from engine.config_compare import parse_compare_config
from engine.config_eval import parse_eval_config
from engine.config_read import validated

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARKER = re.compile(r"<!-- yaml: (run|eval|compare)( fragment)?(, schema only)?(?: in (\S+))? -->")
BLOCK = re.compile(r"^(?P<marker>[^\n]*)\n```yaml\n(?P<body>.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[int, str, str]]:
    """(line number, marker line, body) of every ```yaml block."""
    return [(README.count("\n", 0, m.start("body")), m["marker"], m["body"]) for m in BLOCK.finditer(README)]


def merged(base: dict, fragment: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def whole_run() -> dict:
    return next(yaml.safe_load(body) for _, marker, body in blocks() if marker == "<!-- yaml: run -->")


def test_the_readme_has_yaml_blocks_and_each_is_marked() -> None:
    found = blocks()
    assert len(found) >= 8, "the README's yaml examples were not found"
    unmarked = [line for line, marker, _ in found if not MARKER.fullmatch(marker.strip())]
    assert not unmarked, f"README lines {unmarked}: put a <!-- yaml: KIND --> marker line before the block"


@pytest.mark.parametrize("line,marker,body", blocks(), ids=[f"line{line}" for line, _, _ in blocks()])
def test_a_readme_yaml_block_validates(line: int, marker: str, body: str) -> None:
    match = MARKER.fullmatch(marker.strip())
    assert match, f"README line {line}: no <!-- yaml: KIND --> marker before the block"
    kind, fragment, schema_only, folder = match.groups()
    raw = yaml.safe_load(body)  # a YAML syntax error fails here
    assert isinstance(raw, dict) and raw, f"README line {line}: the block holds no mapping"
    base_dir = ROOT / (folder or ".")
    source = f"README.md line {line}"
    if kind == "eval":
        parse_eval_config(raw, base_dir, source)
    elif kind == "compare":
        parse_compare_config(raw, base_dir, source)
    elif schema_only:
        validated(RunConfig, merged(whole_run(), raw), source, "a run config")
    else:
        parse_config(merged(whole_run(), raw) if fragment else raw, base_dir, source)


def test_a_wrong_key_in_a_block_fails_the_check() -> None:
    """The check can fail: a misspelt key in the minimal config is refused."""
    raw = merged(whole_run(), {"train": {"learning_rat": 1.0}})
    with pytest.raises(ValueError, match="learning_rat"):
        parse_config(raw, ROOT, "README")
