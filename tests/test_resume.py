"""Resume policy of the recipes (smartthinker_verl.training.train.resume_decision) and the file logger that keeps
the steps before a resumed checkpoint (smartthinker_verl.file_logger, on verl's real FileLogger). The end-to-end
kill -9 and resume through verl's trainer is tests/test_multinode_resume_cpu.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl import file_logger
from smartthinker_verl.training import train
from smartthinker_verl.training.recipe_config import compose_config
from smartthinker_verl.training.train import ResumeError, resume_decision


def run_folder(tmp_path: Path, step: int | None) -> list[str]:
    if step is not None:
        (tmp_path / f"global_step_{step}").mkdir(parents=True)
        (tmp_path / "latest_checkpointed_iteration.txt").write_text(f"{step}\n")
    return [f"trainer.default_local_dir={tmp_path}"]


def test_a_fresh_folder_starts_without_a_word(tmp_path: Path) -> None:
    overrides = run_folder(tmp_path, None)
    assert resume_decision(compose_config(overrides), overrides, {}) == (None, None)


def test_an_existing_checkpoint_stops_the_run_with_both_fixes(tmp_path: Path) -> None:
    overrides = run_folder(tmp_path, 50)
    with pytest.raises(ResumeError) as caught:
        resume_decision(compose_config(overrides), overrides, {})
    message = str(caught.value)
    assert "up to global_step_50" in message and "RESUME=1" in message and "EXPERIMENT=NAME" in message
    assert isinstance(caught.value, RuntimeError)


def test_resume_1_continues_loudly(tmp_path: Path) -> None:
    overrides = run_folder(tmp_path, 50)
    mode, message = resume_decision(compose_config(overrides), overrides, {"RESUME": "1"})
    assert mode == "auto" and message.startswith(f"RESUMING {tmp_path} from global_step_50")
    mode, message = resume_decision(compose_config(run_folder(tmp_path / "new", None)), [], {"RESUME": "1"})
    assert mode == "auto" and "no checkpoint yet" in message


def test_resume_0_starts_over_and_explicit_resume_mode_is_obeyed(tmp_path: Path) -> None:
    overrides = run_folder(tmp_path, 50)
    mode, message = resume_decision(compose_config(overrides), overrides, {"RESUME": "0"})
    assert mode == "disable" and "starting from scratch" in message
    explicit = [*overrides, "trainer.resume_mode=disable"]
    assert resume_decision(compose_config(explicit), explicit, {}) == (None, None)
    explicit = [*overrides, "trainer.resume_mode=auto"]
    assert resume_decision(compose_config(explicit), explicit, {})[1].startswith("RESUMING")


def test_train_main_refuses_before_launching(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d.parquet"
    data.write_bytes(b"")
    overrides = [*run_folder(tmp_path / "run", 25), f"data.train_files={data}", f"data.val_files=[{data}]"]
    monkeypatch.delenv("RESUME", raising=False)
    monkeypatch.setattr(train, "launch", lambda config: pytest.fail("must not launch"))
    assert train.main(overrides) == 2
    launched = []
    monkeypatch.setenv("RESUME", "1")
    monkeypatch.setattr(train, "launch", launched.append)
    assert train.main(overrides) == 0
    assert launched[0].trainer.resume_mode == "auto"


# ------------------------------------------------------------------------------------------------ file logger


def lines(*records: tuple[int, bool]) -> list[bytes]:
    return [
        json.dumps({"step": s, "data": {"training/global_step": s} if t else {"val-core/x": 1}}).encode() + b"\n"
        for s, t in records
    ]


def test_records_before_the_resumed_step_are_kept() -> None:
    old = lines((1, True), (2, True), (3, True))  # killed after logging 3, checkpoint at 2
    assert file_logger.records_to_keep(old, 3, True) == old[:2]
    # validation at the checkpoint's step first (val_before_train): that step's training record stays
    assert file_logger.records_to_keep(old, 2, False) == old[:2]
    assert file_logger.records_to_keep(old + [b'{"step": 4, "da'], 4, True) == old  # a line cut by the crash
    assert file_logger.records_to_keep(old, 1, True) == [] and file_logger.records_to_keep(old, 0, False) == []


def test_verls_file_logger_keeps_history_across_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from verl.utils.tracking import FileLogger

    assert not file_logger.install()  # the plugin installed it already: idempotent
    path = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    first = FileLogger("p", "e")
    for step in (1, 2, 3):
        first.log({"training/global_step": step}, step)
    first.finish()
    resumed = FileLogger("p", "e")  # verl opens with "wb": the history would be gone
    for step in (3, 4):
        resumed.log({"training/global_step": step}, step)
    resumed.finish()
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2, 3, 4]
    fresh = FileLogger("p", "e")
    fresh.log({"training/global_step": 1}, 1)
    fresh.finish()
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1]
