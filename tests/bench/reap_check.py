"""Real engine processes through the web server's scheduler: five short training runs on the bundled demo
model queued one after another, plus one killed with `kill -9` while it trains; then `ps` of this process's
children. Prints the states and the ps lines; exits 1 if any child is defunct.

    .venv/bin/python tests/bench/reap_check.py [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.config import load_config  # noqa: E402
from webui.jobs.runs import RunManager  # noqa: E402
from webui.jobs.scheduler import Scheduler  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="reap-"))
    config = load_config(ROOT / "assets" / "demo.yaml")
    config = config.model_copy(update={"train": config.train.model_copy(update={"max_steps": args.steps})})
    scheduler = Scheduler(workspace)
    runs = RunManager(scheduler)
    scheduler.start()
    started = time.time()
    runs.submit(config, name="killed")
    while runs.info("killed").state != "training":
        time.sleep(0.2)
    names = [runs.submit(config, name=f"run{i}")[0] for i in range(5)]
    os.kill(runs.run_dir("killed").read_status()["pid"], signal.SIGKILL)
    while any(runs.info(name).state not in ("completed", "failed", "stopped") for name in names):
        time.sleep(0.5)
    time.sleep(3)  # a few scheduler ticks after the last exit
    scheduler.shutdown()
    for name in ["killed", *names]:
        info = runs.info(name)
        print(f"{name:8} {info.state:10} {info.error or ''}")
    print(f"{time.time() - started:.0f} s; ps --ppid {os.getpid()}:")
    ps = subprocess.run(["ps", "-o", "pid,stat,cmd", "--ppid", str(os.getpid())], capture_output=True, text=True)
    print(ps.stdout.rstrip())
    defunct = [line for line in ps.stdout.splitlines()[1:] if "<defunct>" in line or " Z" in line]
    print(f"defunct children: {len(defunct)}")
    return 1 if defunct else 0


if __name__ == "__main__":
    sys.exit(main())
