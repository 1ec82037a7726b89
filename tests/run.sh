#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, lint, then run it:  bash tests/run.sh [PYTEST ARGS]
# The fast loop (no process started, under a minute):  bash tests/run.sh tests/unit
# - a virtual environment in .venv with the pinned runtime and test dependencies;
# - Debian's chromium for the browser tests (Playwright drives it; its own browser download is not used).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
# --no-compile: pip would compile all 17,144 .py files of the environment to bytecode (34.5 s of CPU here) before any
# test starts (a fresh clone has a fresh .venv); Python compiles the 4,105 modules the suite imports (9.5 s) once,
# when each is first imported, and keeps their bytecode. It keeps it only where PYTHONDONTWRITEBYTECODE is unset:
# this project's machines set it, and with it every engine process the suite starts compiled torch, transformers and
# the rest from source again (import torch+transformers+peft+trl+gradio: 17 s of CPU against 8 s with bytecode).
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt \
  -r tests/requirements.txt

# fonts-wqy-microhei: Chinese glyphs, so screenshots of the Chinese page show text rather than boxes.
if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi

.venv/bin/ruff check --quiet .  # lint first: pyproject.toml says what it checks

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Two passes. First every test not marked `serial`, on WORKBENCH_TEST_WORKERS pytest-xdist workers (2 by default:
# 3 on the 2-core machine made the first pass slower, 908 s against 794 s, its browser tests twice as long);
# --dist loadfile keeps each test file on one worker, so a module's fixtures (a trained run, a started server) are
# built once, and --no-loadscope-reorder hands the files out in collection order (tests/browser and tests/engine, the long ones,
# first; xdist's default puts the files with the fewest tests, the browser ones, last, where one worker idles
# while the other finishes them). Then the `serial`
# tests (they assert wall-clock budgets), alone on the machine, if the first pass's selection left any out.
# Exit status: the first pass's failure, else the second's; 5 (no test) only when neither pass ran one.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export WORKBENCH_TEST_SERIAL_LEFT=$scratch/serial-left  # tests/conftest.py creates it when it leaves serial tests out
pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
first=0 second=5
# One OpenMP thread per process in the first pass: several workers each training with torch's default of one thread per
# core oversubscribe the cores, and OpenMP's threads then spin waiting for each other (a 30-step tiny-model run took
# 28-31 s of CPU with 2 threads against 5.6-5.8 s with 1, on this 2-core machine under load). The serial pass keeps
# torch's default, as a user's run has it.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "${pytest[@]}" -n "${WORKBENCH_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder --part parallel "$@" \
  || first=$?
stopped=$([[ "$first" != 0 && "$first" != 5 && " $* " =~ " -x "|" --exitfirst " ]] && echo yes || true)
if [ -e "$WORKBENCH_TEST_SERIAL_LEFT" ] && [ -z "$stopped" ]; then
  echo "--- the tests marked serial, alone on the machine"
  second=0
  "${pytest[@]}" --part serial "$@" || second=$?
fi
for status in "$first" "$second"; do
  if [ "$status" != 0 ] && [ "$status" != 5 ]; then exit "$status"; fi
done
if [ "$first" = 5 ] && [ "$second" = 5 ]; then exit 5; fi
exit 0
