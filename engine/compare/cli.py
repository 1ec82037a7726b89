"""`python launch.py compare CONFIG.yaml`: train one run per method, one after another, and fill the table.

The comparison's folder (config.output_dir, else WORKSPACE/compares/NAME with NAME the config file's stem) gets
compare.yaml (the config, paths resolved), estimate.json (each method's memory estimate before Start, printed
first: engine/compare/estimates.py) and, after every method, table.json, table.csv and table.md
(engine/compare/table.py), which the command also prints. Each method is an ordinary run in RUNS/NAME-METHOD
(engine/compare/plan.py), trained by its own engine process as the page's scheduler starts one
(`python -m engine run RUN --kind train`): its peak memory is its own, not the largest of the methods before it.

Ctrl-C (or SIGTERM) stops the method that trains (it saves a checkpoint and ends `stopped`) and the comparison
after it; running the command again resumes: completed methods are not trained again, a stopped one continues
from its checkpoint.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.compare import estimates as estimated
from engine.compare.plan import DONE, RESUME, Step, compare_folder, plan, prepare, write_compare_yaml
from engine.compare.table import CompareDir, text_lines, write_table
from engine.config import ConfigError
from engine.config_compare import CompareConfig, load_compare_config
from engine.jobs.rundir import RunDir
from engine.model.config_json import ModelFileError

Launch = Callable[[RunDir], int]  # trains the prepared run folder; its exit code


def child_process(run: RunDir) -> int:
    """Train the run in an engine process of its own, as the page's scheduler does; its output goes to the run's
    stdout.log."""
    with open(run.stdout_log, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "engine", "run", str(run.path), "--kind", "train"],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _current.append(process)
        try:
            return process.wait()
        finally:
            _current.remove(process)


_current: list[subprocess.Popen] = []
_stop: list[bool] = []


def _on_signal(_signum: int, _frame: object) -> None:
    """Stop the method that trains (it saves and ends `stopped`) and the comparison after it."""
    _stop.append(True)
    for process in _current:
        process.send_signal(signal.SIGTERM)


def run_comparison(compare: CompareDir, config: CompareConfig, launch: Launch | None = None,
                   say: Callable[[str], None] = print) -> str:
    """Train every method not done yet, in order, writing and printing the table after each; the comparison's
    final state: completed (every method completed), stopped, or failed (a method failed: the others still
    train)."""
    launch = launch or child_process
    write_compare_yaml(compare, config)
    found = estimated.method_estimates(config, estimated.read_model_config(config), *estimated.machine())
    estimated.write_estimates(compare.path, found)
    for line in estimated.lines(found):
        say(line)
    steps = plan(compare, config)
    write_table(compare, config)
    failed = False
    for step in steps:
        if step.action == DONE:
            say(f"{step.method}: completed earlier ({step.run.path}), not trained again")
            continue
        if _stop:
            break
        say(f"{step.method}: {'resuming' if step.action == RESUME else 'training'} in {step.run.path}")
        failed |= _train(step, launch, say)
        for line in text_lines(write_table(compare, config)):
            say(line)
    table = write_table(compare, config)
    states = [row["state"] for row in table["rows"]]
    if all(state == "completed" for state in states):
        return "completed"
    return "failed" if failed and not _stop else "stopped"


def _train(step: Step, launch: Launch, say: Callable[[str], None]) -> bool:
    """Train one method; True when it failed (its reason said)."""
    prepare(step)
    code = launch(step.run)
    status = step.run.read_status()
    if code == 0 and status.get("state") == "completed":
        return False
    if status.get("state") == "stopped":
        say(f"{step.method}: stopped")
        return False
    say(f"{step.method}: failed: {status.get('error') or f'the engine exited with code {code}'} "
        f"(log: {step.run.path / 'train.log'})")
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py compare", description=(
        "Compare fine-tuning methods: one run per method on the same data and budget, and a table of what each "
        "trains, costs and reaches (table.json, table.csv and table.md in the comparison's folder). Run it again "
        "to resume: completed methods are not trained again."))
    parser.add_argument("config", help="the comparison's YAML config (model, data, train, methods, presets)")
    parser.add_argument("--workspace", default="workspace",
                        help="where compares/NAME and the runs are written when the config names no folders")
    args = parser.parse_args(argv)
    try:
        config = load_compare_config(args.config)
        compare = CompareDir(compare_folder(config, Path(args.config), args.workspace))
        if not config.runs_dir and not config.output_dir:
            config = config.model_copy(update={"runs_dir": str(Path(args.workspace).expanduser().resolve() / "runs")})
        previous = {number: signal.signal(number, _on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            state = run_comparison(compare, config, say=print)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    except (ConfigError, ModelFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"comparison {state}: {compare.table_md} ({compare.table_json}, {compare.table_csv})")
    if state == "stopped":
        print(f"run `python launch.py compare {args.config}` again to resume it.")
    return 0 if state in ("completed", "stopped") else 1
