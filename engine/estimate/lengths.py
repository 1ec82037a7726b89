"""A dataset's token lengths for the estimate before Start (engine/estimate/memory.py `lengths`), measured as the
Train tab's inspection measures them: the base model's tokenizer on the first SAMPLE_ROWS rows, each row rendered
as training renders it (engine.data.pipeline.inspect_dataset). An engine process's work (it loads a tokenizer):
the comparison job and `launch.py estimate --measure-data` call it; the page has the inspection's own lengths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def measured_lengths(config: Any, say: Callable[[str], Any]) -> list[int] | None:
    """Token lengths of the rows of config.data (a run's or a comparison's config: model, data, train.cutoff_len);
    None, said, where they cannot be measured (the estimate then takes rows of cutoff_len tokens)."""
    from engine.data.pipeline import inspect_dataset
    from engine.jobs.failures import EngineError
    from engine.model.loading import load_tokenizer

    try:
        tokenizer = load_tokenizer(config.model)
        return inspect_dataset(config.data, tokenizer, config.train.cutoff_len).get("lengths") or None
    except (EngineError, OSError, ValueError) as error:
        from engine.sentences import said

        say(said("engine.log.lengths_unmeasured", error=str(error), cutoff=config.train.cutoff_len))
        return None
