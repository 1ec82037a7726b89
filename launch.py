"""PEFT Workbench: `python launch.py` serves the web UI; `python launch.py train|chat|export ...` runs
the same engine headless (see `python launch.py --help`)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from engine.__main__ import COMMANDS

    if argv and argv[0] in COMMANDS:
        from engine.__main__ import main as engine_main

        return engine_main(argv)
    from webui.app import main as webui_main

    return webui_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
