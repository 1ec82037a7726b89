"""launch.py's command line: the web server's options and the list of engine sub-commands.

Plain argparse, no gradio: `python launch.py --help` answers at once.
"""

from __future__ import annotations

import argparse
import socket

from engine.__main__ import COMMANDS

PROG = "python launch.py"


def commands_epilog() -> str:
    lines = ["commands (run headless, without the web page; `python launch.py COMMAND --help` for each):"]
    lines += [f"  {name:<13} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["  help          this text, or `help COMMAND` for one command's options"]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} [OPTIONS]  |  {PROG} COMMAND [ARGS]",
        description="PEFT Workbench: without a command, serve the web page (http://127.0.0.1:7860 by default).",
        epilog=commands_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    result.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    result.add_argument("--auth", metavar="USER:PASS", help="require this login")
    result.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    result.add_argument("--workspace", default="workspace", help="folder for uploads, runs and exports")
    result.add_argument("--allow-host", metavar="HOST", action="append", default=[], dest="allow_host",
                        help="also answer requests addressed to HOST (repeatable): by default only loopback names "
                             "(127.0.0.1, localhost, ::1) and --host are answered; others are refused with 403, so "
                             "a web page elsewhere cannot reach this server through a name it controls")
    result.add_argument("--allow-path", metavar="DIR", action="append", default=[], dest="allow_path",
                        help="also let the page read models and datasets under DIR (repeatable); everything else it "
                             "reads stays inside --workspace and assets/")
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port (so the server could not bind it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False
