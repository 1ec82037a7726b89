"""`python launch.py compare CONFIG.yaml`: train (and evaluate) one run per method, one after another, and fill the
table, as a job of kind `compare` (engine/compare/job.py) run in this process.

The comparison's folder is config.output_dir, else WORKSPACE/compares/NAME with NAME the config file's stem: the
same folder, status.json and events.jsonl the page shows for a comparison it started. Each method is an ordinary
run in RUNS/NAME-METHOD (engine/compare/plan.py), trained by its own engine process.

Ctrl-C (or SIGTERM) stops the method that trains (it saves a checkpoint and ends `stopped`) and the comparison
after it; running the command again resumes: completed methods are not trained again, a stopped one continues
from its checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.compare.plan import compare_folder, write_compare_yaml
from engine.compare.table import CompareDir
from engine.config import ConfigError
from engine.config_compare import load_compare_config
from engine.jobs.kinds import COMPARE
from engine.jobs.lifecycle import run_job
from engine.jobs.rundir import FINAL_STATES
from engine.model.config_json import ModelFileError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py compare", description=(
        "Compare fine-tuning methods: one run per method on the same data and budget, each evaluated beside the "
        "base, and a table of what each trains, costs and reaches (table.json, table.csv and table.md in the "
        "comparison's folder). Run it again to resume: completed methods are not trained again."))
    parser.add_argument("config", help="the comparison's YAML config (model, data, train, methods, presets)")
    parser.add_argument("--workspace", default="workspace",
                        help="where compares/NAME and the runs are written when the config names no folders")
    args = parser.parse_args(argv)
    try:
        config = load_compare_config(args.config)
        compare = CompareDir(compare_folder(config, Path(args.config), args.workspace))
    except (ConfigError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not config.runs_dir and not config.output_dir:
        config = config.model_copy(update={"runs_dir": str(Path(args.workspace).expanduser().resolve() / "runs")})
    if compare.read_status().get("state") not in (*FINAL_STATES, None) and compare.process_alive():
        print(f"error: the comparison in {compare.path} is running (pid {compare.read_status().get('pid')}): wait "
              "for it or stop it first.", file=sys.stderr)
        return 2
    write_compare_yaml(compare, config)
    code = run_job(COMPARE, compare.path, own_process=True)
    state = compare.read_status().get("state")
    print(f"comparison {state}: {compare.table_md} ({compare.table_json}, {compare.table_csv})")
    if state == "stopped":
        print(f"run `python launch.py compare {args.config}` again to resume it.")
    return code
