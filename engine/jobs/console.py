"""Keep third-party chatter (warnings, progress bars, library log records) off the user's console.

The engine's own lines are what a user reads on the terminal and in the page's log; a FutureWarning from
transformers or a "Loading weights" bar is nothing a user can act on. `send_library_output_to_log()`
routes them into the logging tree instead, where a run's train.log handler keeps them.
"""

from __future__ import annotations

import logging
import os
import warnings

# Libraries whose logger prints to the terminal itself (its own stdout handler, propagation off), from the moment
# they are imported: DeepSpeed, which transformers imports where it is installed (requirements-distributed.txt),
# says "Setting accelerator to CPU. If you have GPU ..." on every CPU run's console.
SELF_PRINTING_LOGGERS = ("DeepSpeed",)


class _ToRootLogger(logging.Filter):
    """Hands each record to the root logger's handlers (train.log) instead of the logger's own terminal handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        logging.getLogger().handle(record)
        return False


def route_self_printing_loggers() -> None:
    """A filter on each SELF_PRINTING_LOGGERS logger (set before the library creates it, so it stays when the
    library adds its handler): its records reach train.log, never the console."""
    for name in SELF_PRINTING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ToRootLogger) for f in logger.filters):
            logger.addFilter(_ToRootLogger())


def send_library_output_to_log() -> None:
    """Warnings and transformers/datasets/huggingface_hub records go to logging (train.log); no progress bars.

    Call it before the heavy imports: huggingface_hub reads its progress-bar switch when it is imported.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger
    warnings.simplefilter("default")  # once per location, as Python shows them, but into the log
    route_self_printing_loggers()
    import transformers.utils.logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.disable_default_handler()  # transformers' own stderr handler
    hf_logging.enable_propagation()  # its records reach the root logger, so train.log
    import datasets

    datasets.disable_progress_bars()
    root = logging.getLogger()
    if not root.handlers:  # no log file (export, chat): drop the records rather than print them
        root.addHandler(logging.NullHandler())
