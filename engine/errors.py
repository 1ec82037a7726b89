"""UserError: the one base of every error meant for a person, in the engine and in the web page alike.

Plain Python (the web process imports it). Code that shows an error to a person (the page's toasts, the CLI's
one line on stderr, a job's failed status) may catch UserError and show str(error) as it is; any other
exception is a bug or an accident of the machine, and is explained or logged with its traceback instead.
Each layer names its own subclasses (engine: ConfigError, EngineError and its children; webui: PathError,
RunError, EngineCommandError, ChatWorkerError, ToolsError), and no two share a name (tests/unit/test_errors.py).

An error made from a keyed sentence (`raise DataError(said("engine.data.empty", name=name))`, engine.sentences)
keeps its key and values: `error.sentence` is that Sentence, which a failed status and the page carry on.
"""

from __future__ import annotations

from engine.sentences import Sentence, sentence_of


class UserError(Exception):
    """An error whose message is one sentence for a person: what is wrong and what to change."""

    @property
    def sentence(self) -> Sentence:
        """The message as a Sentence: with its key and values where it was made with engine.sentences.said."""
        first = self.args[0] if len(self.args) == 1 else None
        return first if isinstance(first, Sentence) else sentence_of(str(self))
