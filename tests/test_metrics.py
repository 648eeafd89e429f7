"""The step's smartthinker/... statistics reach whatever verl's Tracking logger writes."""

from __future__ import annotations

import json
import math

import torch
import verl  # noqa: F401
from verl.utils.tracking import Tracking

from smartthinker_verl import metrics
from smartthinker_verl.shaping import calibrate
from smartthinker_verl.shaping.smartthinker import step_statistics


def test_step_metrics_cover_every_name_and_handle_missing_classes():
    # one all-correct group only: no incorrect response, no mixed group
    result = calibrate(torch.tensor([5, 6, 7]), torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.int64))
    values = metrics.step_metrics(step_statistics(result))
    assert list(values) == [metrics.PREFIX + name for name in metrics.METRIC_NAMES]
    assert math.isnan(values["smartthinker/length_incorrect/mean"])
    assert math.isnan(values["smartthinker/optimal_length/mean"])  # no mixed group this step
    assert values["smartthinker/all_correct_group_frac"] == 1.0 and values["smartthinker/penalized_frac"] == 0.0


def test_pending_statistics_are_merged_into_the_next_log_call_once(tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    monkeypatch.chdir(tmp_path)
    tracking = Tracking(project_name="p", experiment_name="e", default_backend=["file"])
    metrics.PENDING.pop()
    metrics.record({"smartthinker/accuracy/mean": 0.25})
    tracking.log(data={"actor/loss": 1.0}, step=1)
    tracking.log(data={"actor/loss": 0.5}, step=2)
    tracking.finish()
    written = sorted(tmp_path.rglob("*.jsonl"))
    assert written, "verl's file logger wrote nothing"
    rows = [json.loads(line) for line in written[0].read_text().splitlines() if line.strip()]
    assert rows[0]["data"]["smartthinker/accuracy/mean"] == 0.25 and rows[0]["step"] == 1
    assert "smartthinker/accuracy/mean" not in rows[1]["data"]


def test_the_wrapped_signature_is_verls():
    """The hand-off wraps verl's Tracking.log; a different signature in the installed verl must fail here."""
    import inspect

    original = inspect.unwrap(Tracking.log)
    assert original is not Tracking.log, "the plugin did not wrap Tracking.log"
    assert tuple(inspect.signature(original).parameters) == metrics.WRAPPED_SIGNATURE


def test_statistics_never_logged_give_one_warning(caplog):
    metrics.PENDING.pop()
    fresh = metrics._PendingMetrics()
    with caplog.at_level("WARNING", logger="smartthinker_verl.metrics"):
        fresh.record({"smartthinker/accuracy/mean": 0.5})
        fresh.record({"smartthinker/accuracy/mean": 0.6})  # the first step was never logged
        fresh.record({"smartthinker/accuracy/mean": 0.7})
    warnings = [r for r in caplog.records if "never logged" in r.getMessage()]
    assert len(warnings) == 1 and "smartthinker/" in warnings[0].getMessage()


def test_a_changed_tracking_signature_is_not_wrapped_and_is_reported(monkeypatch, caplog):
    def log(self, data, step, backend=None, extra=None):  # a hypothetical future verl
        return None

    monkeypatch.setattr(Tracking, "log", log)
    with caplog.at_level("ERROR", logger="smartthinker_verl.metrics"):
        assert metrics.install_tracking_hook() is False
    assert Tracking.log is log
    assert any("will NOT be logged" in r.getMessage() for r in caplog.records)
