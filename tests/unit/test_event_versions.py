"""The events schema's version: every line written carries "v": 2, and lines of version 1 (runs written before curves
were named: loss, eval_loss ... as fields of their own) are read through engine.jobs.events.migrate."""

from __future__ import annotations

import json

import pytest

from engine.jobs.events import VERSION, EventError, Metrics, Status, parse, to_line

OLD_WORKSPACE_LINE = ('{"kind": "metrics", "step": 1, "loss": 8.857574462890625, "learning_rate": 0.005, '
                      '"grad_norm": 1.834855556488037, "tokens_per_s": 2345.2, "epoch": 0.1111, "t": 1796426510.253}')


def test_every_line_written_carries_the_version_and_reads_back_the_same():
    for event in (Metrics(step=3, values={"reward_margin": 0.5}, loss=1.25, t=1.0), Status(state="completed", t=1.0)):
        line = to_line(event)
        assert json.loads(line)["v"] == VERSION == 2
        assert parse(line) == event


def test_a_version_1_metrics_line_becomes_named_values():
    event = parse(OLD_WORKSPACE_LINE)
    assert isinstance(event, Metrics) and event.step == 1 and event.epoch == 0.1111
    assert event.values == {"loss": 8.857574462890625, "learning_rate": 0.005, "grad_norm": 1.834855556488037,
                            "tokens_per_s": 2345.2}
    assert event.loss == 8.857574462890625 and event.eval_loss is None


def test_lines_that_are_no_event_of_a_known_version_are_refused():
    with pytest.raises(EventError, match="version 3"):
        parse('{"kind": "status", "v": 3, "state": "completed", "t": 1}')
    with pytest.raises(EventError, match="unknown fields"):  # version 2 names its figures under values only
        parse('{"kind": "metrics", "v": 2, "step": 1, "loss": 1.0, "t": 1}')
    with pytest.raises(EventError, match="numbers"):
        Metrics(step=1, values={"loss": "low"})
