"""Ending every process of a job the scheduler started, not only its group.

The scheduler starts each engine in a session (and process group) of its own, so that one signal to the group
reaches the engine and the processes it starts. A run of several processes is the exception: its engine starts
torchrun, and torchrun starts each rank in a session of its own (torch.distributed.elastic's subprocess handler,
`start_new_session=True`), which a signal to the engine's group never reaches. SIGKILL to the group alone would kill
the engine and torchrun before torchrun could end the ranks, and leave the ranks training on, orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def kill_tree(pid: int) -> bool:
    """SIGKILL the process group `pid` leads and every process below `pid`, each one's own group where it leads
    one; False where `pid` is gone. The group is stopped first (SIGSTOP), so that none of its processes starts
    another while the tree is read."""
    try:
        os.killpg(pid, signal.SIGSTOP)
        below = psutil.Process(pid).children(recursive=True)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False
    for process in below:
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            if os.getpgid(process.pid) == process.pid:  # a rank torchrun started: it leads its own group
                os.killpg(process.pid, signal.SIGKILL)
            else:
                os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
