"""Limits an engine process puts on itself at start, as the process that started it asks (engine/__main__.py
reads the request from the environment before importing the command):

- `die_with_parent(pid)`: on Linux the kernel kills this process (SIGKILL) when its parent ends, however the
  parent ends (kill -9 included), so a short command the web server waits for never outlives the server.
  Elsewhere it does nothing; the web server then ends its commands when it exits normally.
- `cap_memory(megabytes)`: the process's writable memory (RLIMIT_DATA: heap and anonymous mappings, not the
  address space that shared libraries such as torch's reserve) is capped, so an allocation past the cap fails
  with MemoryError instead of growing until the machine swaps. Where the platform has no such limit, nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_cap_mb: int | None = None


class LifetimeError(RuntimeError):
    """The parent is already gone, or the limit cannot be set; the message says so in one sentence."""


def die_with_parent(parent_pid: int) -> None:
    """Be killed when `parent_pid` (this process's parent) ends; end now if it has ended already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise LifetimeError(f"prctl(PR_SET_PDEATHSIG) failed ({os.strerror(error)}).")
    # the parent may have ended before the signal was asked for: then this process has been handed to another
    if os.getppid() != parent_pid:
        raise LifetimeError(f"The process that started this command (pid {parent_pid}) has already ended.")


def cap_memory(megabytes: int) -> None:
    """At most `megabytes` of writable memory from now on (never above a hard limit set already)."""
    global _cap_mb
    if sys.platform == "win32":
        return
    import resource

    wanted = megabytes << 20
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))
    _cap_mb = wanted >> 20


def memory_cap_mb() -> int | None:
    """The cap set by cap_memory in this process, in MB; None where none was set."""
    return _cap_mb
