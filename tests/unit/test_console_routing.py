"""A library logger that prints to the terminal itself (DeepSpeed's) reaches the root logger (train.log) instead."""

from __future__ import annotations

import io
import logging

from engine.jobs.console import route_self_printing_loggers


def test_a_self_printing_library_logger_goes_to_the_log_not_the_console() -> None:
    root = logging.getLogger()
    logger = logging.getLogger("DeepSpeed")
    kept_filters, kept_handlers, kept_propagate = list(logger.filters), list(logger.handlers), logger.propagate
    console, log = io.StringIO(), io.StringIO()
    log_handler = logging.StreamHandler(log)
    try:
        route_self_printing_loggers()
        route_self_printing_loggers()  # twice (each engine command calls it): one filter, one copy in the log
        # what deepspeed.utils.logging does on import, after the engine has set the filter
        logger.propagate = False
        logger.addHandler(logging.StreamHandler(console))
        root.addHandler(log_handler)
        logger.warning("Setting accelerator to CPU. If you have GPU or other accelerator, we were unable to detect it.")
    finally:
        root.removeHandler(log_handler)
        logger.filters[:], logger.handlers[:], logger.propagate = kept_filters, kept_handlers, kept_propagate
    assert console.getvalue() == ""
    assert log.getvalue().count("Setting accelerator to CPU") == 1
