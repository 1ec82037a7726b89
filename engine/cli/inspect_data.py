"""`python -m engine inspect-data --data FILE [--model M ...]`: detect a dataset's format and measure it.

One JSON object on stdout (exit 0), or one sentence on stderr (exit 2): the page runs it and waits
(webui/jobs/commands.py). The measuring is engine.data.pipeline.inspect_dataset's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.config import DataConfig
from engine.data import formats
from engine.data.inspect_pairs import measure_preference, preference_rows, with_pair_columns
from engine.data.pipeline import inspect_rows, measure
from engine.data.sample import SAMPLE_ROWS
from engine.data.sources import sample_source
from engine.jobs.failures import DataError
from engine.jobs.lifetime import memory_cap_mb
from engine.sentences import tell


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python launch.py inspect-data", description="Detect a dataset file's format and measure it (rows, "
        "a preview, one rendered example (of a preference file: one pair, chosen beside rejected) with its "
        "trained spans, token lengths against --cutoff-len); prints one "
        "JSON object, or one sentence on stderr for a bad file.")
    parser.add_argument("--data", required=True, help="dataset file (.json, .jsonl, .csv, .parquet, .txt), dataset "
                        "folder or hub dataset id")
    parser.add_argument("--format", default="auto", choices=("auto", *formats.FORMATS), help="default: detect")
    parser.add_argument("--columns", default="{}", help='JSON map of standard to file columns, e.g. {"prompt": "q"}')
    parser.add_argument("--model", help="hub id or local folder whose tokenizer measures token lengths")
    parser.add_argument("--cutoff-len", type=int, default=512, help="token limit per row (default 512)")
    parser.add_argument("--overlength", default="truncate", choices=("truncate", "drop"), help="default: truncate")
    parser.add_argument("--replace", default="{}", help='JSON map of placeholders to their text (data.replace), '
                        'e.g. {"name": "Aria"}: the preview, example and lengths show the rows filled')
    parser.add_argument("--split", default="train", help="split of a dataset folder or hub dataset (default train)")
    parser.add_argument("--sample-rows", type=_positive, default=SAMPLE_ROWS,
                        help=f"rows read for the preview, example and token lengths; the rest are only counted "
                        f"(default {SAMPLE_ROWS})")
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows, 1 or more")
    return int(text)


def out_of_memory(name: str, sample_rows: int) -> str:
    cap = memory_cap_mb()
    limit = f"the {cap:,} MB this inspection may use" if cap else "the memory this machine has"
    return (f"Measuring the first {sample_rows:,} rows of {name} needed more than {limit}: split its very long "
            "rows, or measure fewer with --sample-rows on the command line.")


def _inspect(cfg: DataConfig, args: argparse.Namespace) -> dict[str, Any] | str:
    """The report, or the one sentence that says why there is none. A file refused for its rows (no format matches
    its columns, a bad row) is said before a tokenizer is loaded, which takes seconds: the page's Columns group
    re-inspects after each pick. The rows read then are the ones measured once the tokenizer is loaded: each is
    normalised once. Of a preference file (its columns mapped by data.columns): one rendered pair, chosen beside
    rejected; of any other, inspect_dataset's."""
    try:
        sample = sample_source(cfg.path, cfg.split, args.sample_rows)
        pairs = with_pair_columns(cfg, sample) if args.format == "auto" else None
        read = inspect_rows(cfg, args.sample_rows, sample) if pairs is None else preference_rows(cfg, pairs)
    except DataError as error:
        return error.sentence  # with its message key: `tell` prints it for the page
    if not args.model:
        return _file_columns(read.report, cfg, sample, pairs)
    try:
        tokenizer = _load_tokenizer(args.model)
    except (OSError, ValueError) as error:
        return (f"Cannot load a tokenizer from {args.model} ({type(error).__name__}): choose a model whose folder "
                "has its tokenizer files (tokenizer.json, tokenizer.model or vocab.*).")
    try:
        measured = (measure if pairs is None else measure_preference)(read, tokenizer, args.cutoff_len)
    except DataError as error:
        return error.sentence
    return _file_columns(measured, cfg, sample, pairs)


def _file_columns(report: dict[str, Any], cfg: DataConfig, sample: Any, pairs: Any) -> dict[str, Any]:
    """A preference file's report with the file's own columns where data.columns mapped them: the preview shows
    the mapped names; the page's column choices are the file's own."""
    if pairs is not None and cfg.columns:
        report["file_columns"] = list(dict.fromkeys(str(key) for row in sample.records for key in row))
    return report


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=False)


def _json_map(text: str, option: str, what: str, example: str) -> dict[str, str] | str:
    """The JSON object of strings an option holds, or the sentence that says why it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return f"{option} is not valid JSON ({error.msg}): pass an object like '{example}'."
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return f"{option} must be a JSON object of {what}, like '{example}'."
    return value


def main(argv: list[str]) -> int:
    """`python -m engine inspect-data`: one JSON object on stdout (exit 0), or one sentence on stderr (exit 2)."""
    args = _parser().parse_args(argv)
    columns = _json_map(args.columns, "--columns", "column names", '{"prompt": "question"}')
    replace = _json_map(args.replace, "--replace", "texts", '{"name": "Aria"}')
    for problem in (columns, replace):
        if isinstance(problem, str):
            print(problem, file=sys.stderr)
            return 2
    cfg = DataConfig(path=args.data, format=args.format, columns=columns, overlength=args.overlength,
                     split=args.split, replace=replace)
    try:
        report = _inspect(cfg, args)
        answer = report if isinstance(report, str) else json.dumps(report, ensure_ascii=False, default=str)
    except MemoryError:
        report = answer = out_of_memory(Path(args.data).name, args.sample_rows)
    if isinstance(report, str):
        tell(report)
        return 2
    print(answer)
    return 0
