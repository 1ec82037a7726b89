"""`python launch.py export RUN_DIR [--out DIR] [--dtype float16|bfloat16|float32] [--max-shard-size 2GB] [--zip]
[--overwrite] [--workspace DIR]`: a finished run exported as a Hugging Face model folder (engine/export/merge.py).

RUN_DIR is a run's folder, or the name of a run in the workspace (WORKSPACE/runs/NAME). With `--out DIR` the export
is written to DIR. Without it, it is the export the page's Export tab makes of that run: a job in
WORKSPACE/exports/NAME-DTYPE (engine.jobs.exports names it, and picks the dtype where --dtype is not given) whose
model/ is the exported folder, and which the Export tab shows with its downloads. `--job JOB_DIR` runs an export job
that the page queued.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from engine.config import EXPORT_DTYPES, ExportConfig
from engine.errors import UserError
from engine.jobs import rundir, workspace
from engine.jobs.exports import export_name
from engine.jobs.kinds import EXPORT
from engine.sentences import said


class ExportRefusedError(UserError):
    """An export the command line refuses before it starts (the run's config unreadable, the folder busy)."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python launch.py export", description=(
        "Merge a finished run's adapter into its base and write a Hugging Face model folder (the adapter where the "
        "method cannot be merged), verified before it is reported done."))
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a finished run's folder, or its name in the "
                                                                      "workspace")
    parser.add_argument("--out", help="the folder to write (must not exist, unless --overwrite); default: "
                                      "WORKSPACE/exports/NAME-DTYPE/model, as the page's Export tab writes")
    parser.add_argument("--dtype", choices=EXPORT_DTYPES, help="weights dtype (default: float32 on a CPU, bfloat16 "
                                                               "on a GPU that computes in it, else float16)")
    parser.add_argument("--max-shard-size", default="2GB", type=shard_size,
                        help="largest safetensors shard (default 2GB)")
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip and OUT-adapter.zip beside OUT")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only after success)")
    workspace.add_workspace_flag(parser, "RUN_DIR may be the name of a run in runs/ there, and an export without "
                                         "--out is written to exports/NAME-DTYPE there")
    parser.add_argument("--job", metavar="JOB_DIR",
                        help="run the export job in JOB_DIR (its config.yaml names the run; what the web UI starts)")
    args = parser.parse_args(argv)
    if args.job and (args.run_dir or args.out):
        parser.error("--job takes the run and the output from JOB_DIR/config.yaml: give no RUN_DIR or --out")
    if not args.job and not args.run_dir:
        parser.error("give RUN_DIR (a run's folder, or its name in the workspace), or --job JOB_DIR")
    if args.job:  # the same job `python -m engine run JOB_DIR --kind export` runs
        return run_export_job(Path(args.job))
    try:
        run = rundir.RunDir(workspace.find_run(args.run_dir, args.workspace).resolve())
        if args.out is None:
            return export_into_workspace(run, args)
    except (workspace.RunNotFoundError, ExportRefusedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return export_to(run, Path(args.out), args)


def export_to(run: rundir.RunDir, out: Path, args: argparse.Namespace) -> int:
    """The export written to `out`, in this process (SIGTERM stops it, and nothing is left half-written)."""
    from engine.export.merge import INTERRUPTED, ExportResult, run_export

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    from engine.jobs.console import send_library_output_to_log

    send_library_output_to_log()
    try:
        result = run_export(run.path, out, args.dtype, args.max_shard_size, args.zip, overwrite=args.overwrite)
    except KeyboardInterrupt:
        result = ExportResult(state="failed", error=INTERRUPTED)
    if result.state == "completed":
        print(f"done: {result.out}" + ("" if result.merged else " (adapter only, not merged)"), file=sys.stderr)
    return 0 if result.state == "completed" else 1


def export_into_workspace(run: rundir.RunDir, args: argparse.Namespace) -> int:
    """The page's export of `run`: a job in WORKSPACE/exports/NAME-DTYPE (the Export tab shows it), replacing a
    failed one there, and a completed one only with --overwrite; prints the folder it wrote."""
    from engine.export.merge import default_dtype

    dtype = args.dtype or default_dtype()
    job = export_job(run, dtype, args.workspace, args.overwrite)
    config = ExportConfig(run_dir=str(run.path), dtype=dtype, max_shard_size=args.max_shard_size, zip=args.zip)
    job.path.mkdir(parents=True, exist_ok=True)
    job.clear_outputs()
    job.config.write_text(config.to_yaml(), encoding="utf-8")
    code = run_export_job(job.path)
    if code == 0:
        result = job.read_status().get("result", {})
        made = [str(job.out), *(result[key] for key in ("zip", "adapter_zip") if result.get(key))]
        print(f"done: {', '.join(made)}" + ("" if result.get("merged") else " (adapter only, not merged)"),
              file=sys.stderr)
    return code


def export_job(run: rundir.RunDir, dtype: str, workspace_dir: str, overwrite: bool) -> rundir.ExportDir:
    """The folder of the export job of `run` in `dtype`; ExportRefusedError where the run's config cannot be read,
    or the folder holds an export that runs, or a completed one (unless `overwrite`)."""
    try:
        method = run.read_config().method.name
    except (FileNotFoundError, ValueError) as error:
        raise ExportRefusedError(str(error)) from None
    job = rundir.ExportDir(workspace.folder(workspace_dir, EXPORT.folder) / export_name(run.name, method, dtype))
    state = job.read_status().get("state")
    if state not in (*rundir.FINAL_STATES, None) and job.process_alive():
        raise ExportRefusedError(said("engine.export.running", path=str(job.path)))
    if state == "completed" and not overwrite:
        raise ExportRefusedError(said("engine.export.done_before", path=str(job.path)))
    return job


def run_export_job(folder: Path) -> int:
    from engine.jobs.lifecycle import run_job

    return run_job(EXPORT, folder, own_process=True)


def shard_size(value: str) -> str:
    """--max-shard-size as argparse reads it: a sentence (exit 2) for what safetensors' sharding cannot parse."""
    from engine.config import shard_size_problem

    if (problem := shard_size_problem(value)) is not None:
        raise argparse.ArgumentTypeError(f"{value!r} is {problem}")
    return value
