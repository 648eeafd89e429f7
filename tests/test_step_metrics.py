"""The step's smartthinker/... statistics reach whatever verl's Tracking logger writes."""

from __future__ import annotations

import json
import math

import torch
import verl  # noqa: F401
from verl.utils.tracking import Tracking

from smartthinker_verl import step_metrics as metrics
from smartthinker_verl import verl_patches
from smartthinker_verl.options import SmartThinkerConfig
from smartthinker_verl.shaping import GroupedBatch, get_method


def test_step_metrics_cover_every_name_and_handle_missing_classes():
    # one all-correct group only: no incorrect response, no mixed group
    batch = GroupedBatch.build(
        torch.tensor([5, 6, 7]), torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.int64)
    )
    values = metrics.as_floats(get_method("smartthinker").shape(batch, SmartThinkerConfig()).statistics)
    assert list(values) == [metrics.PREFIX + name for name in metrics.METRIC_NAMES]
    assert math.isnan(values["smartthinker/length_incorrect/mean"])
    assert math.isnan(values["smartthinker/optimal_length/mean"])  # no mixed group this step
    assert values["smartthinker/all_correct_group_frac"] == 1.0 and values["smartthinker/penalized_frac"] == 0.0


def test_pending_statistics_are_merged_into_the_next_log_call_once(tmp_path, monkeypatch):
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(tmp_path / "metrics.jsonl"))
    monkeypatch.chdir(tmp_path)
    tracking = Tracking(project_name="p", experiment_name="e", default_backend=["file"])
    metrics.PENDING.pop()
    metrics.PENDING.record({"smartthinker/accuracy/mean": 0.25})
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
    assert tuple(inspect.signature(original).parameters) == verl_patches.WRAPPED_SIGNATURE


def test_sub_steps_of_one_logged_step_are_averaged_by_responses():
    """verl's separate_async trainer computes advantages parameter_sync_step times per logged step: each statistic is
    their mean weighted by responses (as verl's MetricsAggregator), a NaN sub-step value counts as absent, and a key
    that had only NaN stays NaN."""
    fresh = metrics._PendingMetrics()
    fresh.record({"m/accuracy/mean": 0.5, "m/length_incorrect/mean": math.nan, "m/only_nan": math.nan}, weight=32)
    fresh.record({"m/accuracy/mean": 0.25, "m/length_incorrect/mean": 100.0, "m/only_nan": math.nan}, weight=96)
    values = fresh.pop()
    assert values["m/accuracy/mean"] == (0.5 * 32 + 0.25 * 96) / 128
    assert values["m/length_incorrect/mean"] == 100.0
    assert math.isnan(values["m/only_nan"])
    assert fresh.pop() == {}


def test_a_changed_tracking_signature_is_not_wrapped_and_is_reported(monkeypatch, caplog):
    def log(self, data, step, backend=None, extra=None):  # a hypothetical future verl
        return None

    monkeypatch.setattr(Tracking, "log", log)
    with caplog.at_level("ERROR", logger="smartthinker_verl.verl_patches"):
        verl_patches.install_logging_patches()
    assert Tracking.log is log
    assert any("will NOT be logged" in r.getMessage() for r in caplog.records)
