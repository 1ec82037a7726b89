"""PEFT Workbench: `python launch.py` serves the web UI; `python launch.py train|chat|export ...` runs
the same engine headless (see `python launch.py --help`). Nothing heavy is imported before it is needed."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from engine.__main__ import COMMANDS

    if argv[:1] == ["help"]:  # `help` alone is --help; `help train` is `train --help`
        argv = [argv[1], "--help"] if len(argv) > 1 and argv[1] in COMMANDS else ["--help"]
    if argv and argv[0] in COMMANDS:
        from engine.__main__ import main as engine_main

        return engine_main(argv)
    from webui.options import parse_args

    if argv and not argv[0].startswith("-"):
        print(f"error: unknown command '{argv[0]}': use one of {', '.join(COMMANDS)}, or no command to serve the "
              "web page (python launch.py --help).", file=sys.stderr)
        return 2
    parse_args(argv)  # --help and bad options answer here, before gradio is imported
    from webui.app import main as webui_main

    return webui_main(argv)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    from engine.__main__ import COMMANDS, exit_without_teardown

    if sys.argv[1:2] and sys.argv[1] in COMMANDS:
        exit_without_teardown(code)  # an engine command's process: nothing is left to do or to write
    sys.exit(code)
