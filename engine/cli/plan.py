"""`python -m engine plan CONFIG.yaml`: the trainable and total parameter counts a config would train, as JSON,
from the model built on the meta device (engine.model.methods.plan): what the page's trainable count asks for."""

from __future__ import annotations

import argparse
import json

from engine.config import ConfigError, load_config
from engine.errors import UserError
from engine.sentences import tell


def main(argv: list[str]) -> int:
    """`python -m engine plan CONFIG.yaml`: print the trainable-parameter count as JSON."""
    parser = argparse.ArgumentParser(
        prog="python launch.py plan", description="Count the parameters a config would train, without training or "
        "loading weights; prints one JSON object (trainable_params, total_params, trainable_percent).")
    parser.add_argument("config", help="run config YAML")
    args = parser.parse_args(argv)
    from engine.jobs.console import send_library_output_to_log

    send_library_output_to_log()  # before torch/bitsandbytes load: their warnings are nothing the user can act on
    from engine.model.methods import plan

    try:
        result = plan(load_config(args.config, writes=False))
    except (ConfigError, RuntimeError, ValueError) as error:
        tell(error.sentence if isinstance(error, UserError) else str(error), prefix="error: ")
        return 2
    print(json.dumps(result))
    return 0
