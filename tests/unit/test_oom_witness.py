"""Issue 24 item 13: a kill -9 while an unrelated process is OOM-killed is not blamed on the OOM killer. The
witness reads, where readable, the kernel's log line naming the killed pid, else the engine's own memory cgroup's
count, and only then the machine-wide count (which cannot tell whose kill it was). Planted files, no process."""

from __future__ import annotations

from pathlib import Path

from engine.jobs.failures import UNSURE, OomWitness, explain_exit, kernel_oom_pids

ENGINE, OTHER = 4242, 777
KMSG_OTHER = (f"6,900,5000000,-;Out of memory: Killed process {OTHER} (stress) total-vm:9000kB, anon-rss:8000kB\n"
              f"6,901,5000001,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=stress,pid={OTHER},uid=0\n"
              " SUBSYSTEM=memory\n")
KMSG_ENGINE = f"6,902,6000000,-;Memory cgroup out of memory: Killed process {ENGINE} (python) total-vm:1kB\n"
KMSG_OLD = f"6,10,10,-;Out of memory: Killed process {ENGINE} (python) total-vm:1kB\n"  # before it started


def plant(root: Path, cgroup_line: str, counter: Path, kills: int) -> tuple[str, str]:
    (root / "proc" / str(ENGINE)).mkdir(parents=True)
    (root / "proc" / str(ENGINE) / "cgroup").write_text(cgroup_line + "\n")
    counter.parent.mkdir(parents=True, exist_ok=True)
    counter.write_text(f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {kills}\n")
    (root / "vmstat").write_text("nr_free_pages 1\noom_kill 5\n")
    return str(root / "proc"), str(root / "sys")


def test_the_kernel_log_names_the_killed_pid(tmp_path):
    kmsg = tmp_path / "kmsg"
    kmsg.write_text(KMSG_OLD + KMSG_OTHER)
    witness = OomWitness(ENGINE, started_us=1000, cgroup_file=None, cgroup_kills=None, machine_kills=5)
    assert kernel_oom_pids(1000, str(kmsg)) == {OTHER}
    assert witness.verdict(str(kmsg), str(tmp_path / "vmstat")) is False  # an unrelated kill, an old one of its pid
    reason = explain_exit(-9, "step 3", oom_killed=witness.verdict(str(kmsg)))
    assert reason == ("The engine process was killed (SIGKILL) by hand or by another program, "
                      "not by the out-of-memory killer.")
    kmsg.write_text(KMSG_OTHER + KMSG_ENGINE)
    assert witness.verdict(str(kmsg)) is True
    assert "out-of-memory killer ended the engine process" in explain_exit(-9, "", oom_killed=True)


def test_without_the_kernel_log_its_own_cgroup_v2_count_decides(tmp_path):
    counter = tmp_path / "sys" / "user.slice" / "engine" / "memory.events"
    proc, sys = plant(tmp_path, "0::/user.slice/engine", counter, kills=2)
    witness = OomWitness.start(ENGINE, proc, sys, str(tmp_path / "vmstat"))
    assert (witness.cgroup_file, witness.cgroup_kills, witness.machine_kills) == (counter, 2, 5)
    (tmp_path / "vmstat").write_text("oom_kill 6\n")  # an OOM kill elsewhere on the machine
    unreadable = str(tmp_path / "no-kmsg")
    assert witness.verdict(unreadable, str(tmp_path / "vmstat")) is False
    counter.write_text("oom 1\noom_kill 3\n")  # one in its own cgroup
    assert witness.verdict(unreadable, str(tmp_path / "vmstat")) is True


def test_a_cgroup_v1_memory_controller_is_read(tmp_path):
    counter = tmp_path / "sys" / "memory" / "docker" / "abc" / "memory.oom_control"
    proc, sys = plant(tmp_path, "9:pids:/docker/abc\n4:memory:/docker/abc", counter, kills=0)
    witness = OomWitness.start(ENGINE, proc, sys, str(tmp_path / "vmstat"))
    assert witness.cgroup_file == counter and witness.cgroup_kills == 0


def test_only_the_machine_wide_count_says_it_is_unsure(tmp_path):
    proc, sys = plant(tmp_path, "0::/", tmp_path / "sys" / "memory.events", kills=0)  # the root cgroup: too wide
    witness = OomWitness.start(ENGINE, proc, sys, str(tmp_path / "vmstat"))
    assert witness.cgroup_file is None and witness.machine_kills == 5
    unreadable = str(tmp_path / "no-kmsg")
    assert witness.verdict(unreadable, str(tmp_path / "vmstat")) is False
    (tmp_path / "vmstat").write_text("oom_kill 6\n")
    assert witness.verdict(unreadable, str(tmp_path / "vmstat")) == UNSURE
    reason = explain_exit(-9, "", oom_killed=UNSURE)
    assert reason.startswith("The engine process was killed (SIGKILL) while the kernel's out-of-memory killer")
    assert "if it was this one: out of memory (ram)" in reason.lower()
    assert OomWitness.start(ENGINE, str(tmp_path / "none"), sys, str(tmp_path / "none")).verdict(
        unreadable, str(tmp_path / "none")) is None
