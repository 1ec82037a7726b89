#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, lint, then run it:  bash tests/run.sh [PYTEST ARGS]
# The fast loop (no process started, under a minute):  bash tests/run.sh tests/unit
# - a virtual environment in .venv with the pinned runtime and test dependencies;
# - Debian's chromium for the browser tests (Playwright drives it; its own browser download is not used).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

# fonts-wqy-microhei: Chinese glyphs, so screenshots of the Chinese page show text rather than boxes.
if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi

.venv/bin/ruff check --quiet .  # lint first: pyproject.toml says what it checks

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
