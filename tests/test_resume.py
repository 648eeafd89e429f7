"""Resume policy of the recipes (smartthinker_verl.launch.train.resume_decision) and the file logger that keeps
the steps before a resumed checkpoint (smartthinker_verl.verl_patches, on verl's real FileLogger). The end-to-end
kill -9 and resume through verl's trainer is tests/test_multinode_resume_cpu.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl import verl_patches
from smartthinker_verl.errors import ResumeError
from smartthinker_verl.launch import train
from smartthinker_verl.launch.compose import compose_config
from smartthinker_verl.launch.train import resume_decision


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
    assert verl_patches.records_to_keep(old, 3, True) == old[:2]
    # validation at the checkpoint's step first (val_before_train): that step's training record stays
    assert verl_patches.records_to_keep(old, 2, False) == old[:2]
    assert verl_patches.records_to_keep(old + [b'{"step": 4, "da'], 4, True) == old  # a line cut by the crash
    assert verl_patches.records_to_keep(old, 1, True) == [] and verl_patches.records_to_keep(old, 0, False) == []


def test_verls_file_logger_keeps_history_across_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from verl.utils.tracking import FileLogger

    verl_patches.install_logging_patches()  # the plugin installed them already: idempotent
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


# ------------------------------------------------------------------------- checkpoint rotation across resumes


def checkpoint(run: Path, step: int, *, complete: bool = True) -> Path:
    """A global_step_N folder as verl writes it (actor shards + data.pt), or as its rotation leaves it (no actor/)."""
    folder = run / f"global_step_{step}"
    if complete:
        (folder / "actor").mkdir(parents=True)
        (folder / "actor" / "model_world_size_1_rank_0.pt").write_bytes(b"w" * 64)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.pt").write_bytes(b"d")
    return folder


def save_through_the_callback(run: Path, step: int, *overrides: str, async_save: bool = False) -> None:
    """What verl's trainer does after writing global_step_<step>: the tracker file, then the callback's on_save."""
    from smartthinker_verl.shaping_state import ShapingStateCallback

    config = compose_config([f"trainer.default_local_dir={run}", "trainer.resume_mode=disable", *overrides])
    callback = ShapingStateCallback(config)
    if not async_save:
        (run / "latest_checkpointed_iteration.txt").write_text(str(step))
    callback.on_save(
        trainer=None, global_step=step, checkpoint_dir=str(run / f"global_step_{step}"), async_save=async_save
    )


def steps_in(run: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("global_step_")) for p in run.glob("global_step_*"))


def test_after_a_resume_only_the_newest_checkpoints_are_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Steps 25 and 50 were written before the resume (verl's manager no longer knows them), 75 after: with
    max_actor_ckpt_to_keep=2 (the recipe's) the callback removes 25, logging it; a later save removes 50."""
    for step in (25, 50, 75):
        checkpoint(tmp_path, step)
    save_through_the_callback(tmp_path, 75)
    assert steps_in(tmp_path) == [50, 75]
    assert f"removed checkpoint {tmp_path}/global_step_25 (trainer.max_actor_ckpt_to_keep=2)" in caplog.text
    checkpoint(tmp_path, 100)
    save_through_the_callback(tmp_path, 100)
    assert steps_in(tmp_path) == [75, 100]
    assert (tmp_path / "global_step_100" / "actor" / "model_world_size_1_rank_0.pt").is_file()


def test_leftovers_of_verls_rotation_go_and_later_or_tracked_steps_stay(tmp_path: Path) -> None:
    """A global_step_N without actor/ (verl removed only that) is removed; a folder after the step just saved (an
    attempt that crashed later) is not touched; the step in latest_checkpointed_iteration.txt is never removed."""
    checkpoint(tmp_path, 10, complete=False)
    for step in (20, 30, 40, 90):
        checkpoint(tmp_path, step)
    save_through_the_callback(tmp_path, 40, "trainer.max_actor_ckpt_to_keep=1")
    assert steps_in(tmp_path) == [40, 90]
    from smartthinker_verl.verl_patches import rotate_checkpoints

    checkpoint(tmp_path, 50)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("40")  # the tracker still names 40: kept
    assert rotate_checkpoints(tmp_path, 1, 50) == []
    assert steps_in(tmp_path) == [40, 50, 90]


def test_no_limit_or_an_asynchronous_save_removes_nothing(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        checkpoint(tmp_path, step)
    save_through_the_callback(tmp_path, 3, "trainer.max_actor_ckpt_to_keep=null")
    assert steps_in(tmp_path) == [1, 2, 3]
    save_through_the_callback(tmp_path, 3, async_save=True)  # not durable yet: wait for a synchronous save
    assert steps_in(tmp_path) == [1, 2, 3]
