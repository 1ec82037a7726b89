"""Reading a job's config: one YAML file to one validated pydantic object, every problem as one sentence.

Every job kind's config (a run's RunConfig in engine/config.py, an evaluation's EvalConfig in
engine/config_eval.py) is read the same way: the file must hold a YAML mapping; an older schema version is brought
to today's (engine/config_migrate.py); pydantic's errors become sentences naming the key as the YAML spells it;
then the config's own `problems()` (what types alone cannot say) are added. ConfigError carries all of them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from engine import config_migrate as migrate
from engine.errors import UserError
from engine.sentences import Sentence, said

UNION_TAGS = ("a-string", "a-mapping", "a-list")  # engine.config's union members' tags, left out of a key's name


class ConfigError(UserError, ValueError):
    """A config that cannot run; `issues` holds one sentence per problem."""

    def __init__(self, issues: list[str], source: str = "config"):
        self.issues = issues
        if len(issues) == 1 and isinstance(issues[0], Sentence):  # one keyed sentence: the error keeps its key
            super().__init__(said("engine.config.issue", source=source, issue=issues[0]))
        else:
            super().__init__(f"{source}: " + " ".join(issues))


Config = TypeVar("Config", bound=BaseModel)


def sentence(error: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """One of pydantic's errors as a sentence naming the key the way the YAML spells it (`prefix`: the section
    the validated mapping sits in, as ("method",) for the method section alone)."""
    parts = [*prefix, *(part for part in error["loc"] if part not in UNION_TAGS)]
    item = next((i for i, part in enumerate(parts) if isinstance(part, int)), None)
    if item is None:
        key, where = ".".join(map(str, parts)), ""
    else:  # a list item: "'fraction' in data.path item 2", counting from 1 as a reader of the YAML does
        key = ".".join(map(str, parts[item + 1:]))
        where = said("engine.value.item", list=".".join(map(str, parts[:item])), number=parts[item] + 1)
    kind = error["type"]
    if kind in ("extra_forbidden", "missing"):
        inside = said("engine.config.in", where=where) if where else ""
        return said("engine.config.unknown_key" if kind == "extra_forbidden" else "engine.config.missing_key",
                    key=key, where=inside)
    subject = (said("engine.value.in_item", key=key, item=where) if key else where) if where else f"'{key}'"
    return value_problem(subject, error, lower=str.lower)


# pydantic's error types worded in the visitor's language: type -> the values of its context the sentence names
VALUE_PROBLEMS = {
    "greater_than": ("gt",), "greater_than_equal": ("ge",), "less_than": ("lt",), "less_than_equal": ("le",),
    "literal_error": ("expected",), "int_type": (), "int_parsing": (), "int_from_float": (), "float_type": (),
    "float_parsing": (), "bool_type": (), "bool_parsing": (), "string_type": (), "list_type": (), "dict_type": (),
}


def value_problem(subject: str, error: dict[str, Any], lower: Any) -> str:
    """"SUBJECT is INPUT: MESSAGE." for a value pydantic refused (MESSAGE: pydantic's, through `lower`), keyed by
    its error type where VALUE_PROBLEMS names it (its values from pydantic's context, so the page words it in the
    visitor's language: engine.value.*), or by a validator's own sentence; where the keyed English is not exactly
    pydantic's (another pydantic version words it otherwise), the sentence is pydantic's, unkeyed."""
    kind, given, context = error["type"], repr(error.get("input")), error.get("ctx") or {}
    if kind == "value_error" and "error" in context:  # a validator's own sentence, as it wrote it
        return said("engine.value.invalid", subject=subject, input=given, reason=str(context["error"]).rstrip("."))
    english = f"{subject} is {given}: {lower(error['msg'])}."
    if kind not in VALUE_PROBLEMS or not all(name in context for name in VALUE_PROBLEMS[kind]):
        return english
    values = {name: lower(_shown(context[name])) for name in VALUE_PROBLEMS[kind]}
    if kind == "literal_error" and " or " in values["expected"]:  # "'a', 'b' or 'c'": its "or" worded too
        first, _, last = values["expected"].rpartition(" or ")
        values["expected"] = said("engine.value.or", first=first, last=last)
    keyed = said(f"engine.value.{kind}", subject=subject, input=given, **values)
    return keyed if keyed == english else english


def validated(model: type[Config], raw: Any, source: str, holds: str) -> Config:
    """`raw` (a mapping of any schema version) as a `model`; `holds` says what the mapping must hold."""
    if not isinstance(raw, dict):
        raise ConfigError([f"the file must hold a YAML mapping with {holds}."], source)
    try:
        return model.model_validate(migrate.migrate_config(raw))
    except migrate.SchemaError as error:
        raise ConfigError([error.sentence("the file")], source) from None
    except ValidationError as error:
        raise ConfigError([sentence(e) for e in error.errors()], source) from None


def without_problems(config: Any, source: str) -> Any:
    """`config` itself, or ConfigError with every sentence its `problems()` gives."""
    issues = config.problems()
    if issues:
        raise ConfigError(issues, source)
    return config


def read_yaml(path: Path) -> Any:
    """The YAML a config file holds; ConfigError when the file is missing or is not YAML."""
    if not path.is_file():
        raise ConfigError([said("engine.config.no_file", path=str(path))], str(path))
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError([said("engine.config.not_yaml", reason=error.__class__.__name__)], str(path)) from None


# (a key of that job's config alone, the command that reads it, the job's name)
OTHER_JOBS = (("methods", "compare", "engine.config.job_compare"), ("models", "eval", "engine.config.job_eval"))


def refuse_other_job(raw: Any, source: str) -> None:
    """ConfigError (one sentence naming the command that reads it) where a run's config reader (train, plan) is
    given a comparison's or an evaluation's config, such as the one the Compare or Evaluate tab keeps, instead of
    one unknown-key sentence per key it does not know."""
    if not isinstance(raw, dict) or "method" in raw:
        return
    for key, command, job in OTHER_JOBS:
        if key in raw:
            keys = ", ".join(name for name in raw if isinstance(name, str))
            raise ConfigError([said("engine.config.other_job", job=said(job), keys=keys, command=command)], source)


def _shown(value: Any) -> str:
    """A context value as pydantic's message shows it: a whole float without its ".0" (gt=0.0: "greater than 0")."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
