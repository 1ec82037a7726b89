"""Fault points: where the fault tests (tests/faults/test_faults_train.py) make the engine kill itself, as a `kill -9`
or an out-of-memory kill would, at a moment they could not reach reliably from outside.

`WORKBENCH_FAULT=POINT` names one point; the engine process that reaches it sends itself SIGKILL there.
Unset (as it always is outside those tests), `fault_point` does nothing. The points:

    checkpoint:STEP   the Trainer's checkpoint of step STEP, after its weights are written and before its
                      optimizer state and trainer_state.json
    final-save        the final save, after the weights are written into the partial folder and before the
                      tokenizer and the rename into place (adapter/ or model/)
"""

from __future__ import annotations

import os
import signal
import sys

FAULT_ENV = "WORKBENCH_FAULT"


def fault_point(name: str, step: int | None = None) -> None:
    """SIGKILL this process when WORKBENCH_FAULT names this point (`name`, or `name:step` where a step is given)."""
    wanted = os.environ.get(FAULT_ENV)
    if wanted and wanted == (name if step is None else f"{name}:{step}"):
        print(f"{FAULT_ENV}={wanted}: killing this process (SIGKILL)", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
