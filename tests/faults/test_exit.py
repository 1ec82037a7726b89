"""Engine commands end without the interpreter's module teardown (engine.__main__.exit_without_teardown), but
otherwise as any exit does: the exit code, buffered output, exit handlers and threads that are not daemons."""

from __future__ import annotations

import subprocess
import sys

from tests.cli import ROOT, engine_env, launch

PROBE = """
import atexit, sys, threading, time
from engine.__main__ import exit_without_teardown
atexit.register(lambda: print("exit handler ran"))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
sys.stdout.write("buffered, never flushed by hand\\n")
exit_without_teardown(3)
"""


def test_an_engine_process_ends_as_any_exit_does_but_sooner():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=engine_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines == ["buffered, never flushed by hand", "thread finished", "exit handler ran"], done.stdout


def test_launch_keeps_the_commands_exit_code():
    done = launch("train", str(ROOT / "no-such-config.yaml"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert launch("help").returncode == 0
