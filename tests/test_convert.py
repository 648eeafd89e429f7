"""``smartthinker-verl convert`` on real FSDP2 checkpoints.

The checkpoints are made the way verl's trainer makes them (tests/fsdp_checkpoint.py): gloo CPU processes shard a
small random Qwen2 with ``fully_shard``, take real AdamW steps and save through verl's ``FSDPCheckpointManager``.
The reference for every comparison is the unsharded model gathered by torch's full-state-dict API in the same
processes, an independent path from the file-based join under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
import fsdp_checkpoint as fc  # noqa: E402

from smartthinker_verl.cli import main as cli_main  # noqa: E402
from smartthinker_verl.convert.discovery import locate_checkpoint  # noqa: E402
from smartthinker_verl.convert.errors import (  # noqa: E402
    CheckpointNotFoundError,
    OutputExistsError,
    ShardError,
    VerificationError,
)
from smartthinker_verl.convert.pipeline import ConvertOptions, convert_checkpoint, same_bits, verify_model  # noqa: E402

QUIET = {"progress": False}
TRAIN_METRICS = {"critic/score/mean": 0.25, "response_length/mean": 812.0, "actor/pg_loss": 0.1}
VAL_METRICS = {"val-core/aime24/acc/mean@1": 0.125, "smartthinker/coefficient/mean": 0.5}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Untied Qwen2, world size 2, steps 1 and 2, with a run config and file-logger metrics."""
    root = tmp_path_factory.mktemp("run2")
    run_dir, ref_dir, base = fc.build_tiny_run(root, steps=[1, 2], world_size=2)
    fc.write_run_config(run_dir, str(base), optimal_length="reference", penalty="one_sided", coefficient="dynamic")
    fc.write_metrics(run_dir, {1: {"critic/score/mean": 0.1}, 2: TRAIN_METRICS})
    with (run_dir / "metrics.jsonl").open("a") as f:  # validation is logged as a separate line of the same step
        f.write(json.dumps({"step": 2, "data": VAL_METRICS}) + "\n")
    return run_dir, ref_dir


@pytest.fixture(scope="module")
def tied_run(tmp_path_factory):
    """Tied embeddings (as Qwen2-1.5B), world size 4: vocab 1027 splits into 257/257/257/256 rows."""
    root = tmp_path_factory.mktemp("run4")
    run_dir, ref_dir, _base = fc.build_tiny_run(root, tie_word_embeddings=True, steps=[3], world_size=4)
    return run_dir, ref_dir


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A peft LoRA actor (r=4, alpha=8 on q_proj/v_proj), world size 2."""
    root = tmp_path_factory.mktemp("lora")
    return fc.build_tiny_run(root, steps=[1], world_size=2, lora_rank=4)


def _reference(ref_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return torch.load(ref_dir / f"global_step_{step}.pt")


def _loaded_state(path: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="auto")
    return model.state_dict()


def _file_names(path: Path) -> set[str]:
    names = set()
    for file in path.glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as f:
            names |= set(f.keys())
    return names


def _convert(path, out=None, step=None, **options):
    return convert_checkpoint(locate_checkpoint(path, step), out, ConvertOptions(**{**QUIET, **options}))


# ------------------------------------------------------------------------------------------------ exactness
def test_float32_output_equals_unsharded_training_weights_bit_for_bit(run, tmp_path):
    run_dir, ref_dir = run
    result = _convert(run_dir, tmp_path / "fp32", dtype="float32")
    reference = _reference(ref_dir, 2)
    loaded = _loaded_state(result.output)
    assert result.verified == len(reference)
    assert set(loaded) == set(reference)
    for name, tensor in reference.items():
        assert tensor.dtype == torch.float32
        assert loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], tensor), name
    # the training step moved the weights off bfloat16-representable values: a bf16 detour would be caught
    assert any(not torch.equal(t.to(torch.bfloat16).float(), t) for t in reference.values())
    assert json.loads((result.output / "config.json").read_text())["dtype"] == "float32"


def test_bfloat16_output_equals_rounded_unsharded_weights(run, tmp_path):
    run_dir, ref_dir = run
    result = _convert(run_dir, tmp_path / "bf16", dtype="bfloat16")
    loaded = _loaded_state(result.output)
    for name, tensor in _reference(ref_dir, 2).items():
        assert loaded[name].dtype == torch.bfloat16
        assert torch.equal(loaded[name], tensor.to(torch.bfloat16)), name
    assert json.loads((result.output / "config.json").read_text())["dtype"] == "bfloat16"


def test_bfloat16_output_equals_verls_own_merger_bit_for_bit(run, tmp_path):
    """verl's ``merge_and_save`` (bfloat16 only) is the reference for the joining rules."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    run_dir, _ = run
    actor = run_dir / "global_step_2" / "actor"
    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(actor),
        hf_model_config_path=str(actor / "huggingface"),
        target_dir=str(tmp_path / "verl"),
    )
    FSDPModelMerger(config).merge_and_save()
    ours = _convert(run_dir, tmp_path / "ours", dtype="bfloat16").output
    assert _file_names(ours) == _file_names(tmp_path / "verl")
    verl_state, our_state = _loaded_state(tmp_path / "verl"), _loaded_state(ours)
    for name, tensor in verl_state.items():
        assert tensor.dtype == torch.bfloat16 and same_bits(our_state[name], tensor), name


def test_tied_embeddings_on_four_uneven_ranks_convert_exactly(tied_run, tmp_path):
    run_dir, ref_dir = tied_run
    result = _convert(run_dir, tmp_path / "tied", dtype="float32")
    reference = _reference(ref_dir, 3)
    assert "lm_head.weight" not in _file_names(result.output)  # stored once, re-tied by transformers
    model = AutoModelForCausalLM.from_pretrained(str(result.output), dtype="auto")
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    loaded = model.state_dict()
    for name, tensor in reference.items():
        assert torch.equal(loaded[name], tensor), name


def test_hybrid_sharded_checkpoint_joins_one_replica_exactly(tmp_path):
    """verl builds a ("ddp", "fsdp") mesh when fsdp_size < world size: 2 replicas x 2 shards here."""
    run_dir, ref_dir, _base = fc.build_tiny_run(tmp_path, steps=[1], world_size=4, fsdp_size=2, save_contents=["model"])
    result = _convert(run_dir, tmp_path / "out", dtype="float32")
    loaded = _loaded_state(result.output)
    reference = _reference(ref_dir, 1)
    assert result.verified == len(reference)
    assert all(torch.equal(loaded[k], v) for k, v in reference.items())
    (run_dir / "global_step_1" / "actor" / "model_world_size_4_rank_3.pt").unlink()  # a replica's file: still needed
    with pytest.raises(ShardError, match=r"model_world_size_4_rank_3\.pt is missing"):
        _convert(run_dir, tmp_path / "out2")


def test_many_output_files_get_an_index_and_still_load_exactly(run, tmp_path):
    run_dir, ref_dir = run
    result = _convert(run_dir, tmp_path / "split", dtype="float32", max_shard_size="200KB")
    files = sorted(p.name for p in result.output.glob("*.safetensors"))
    assert len(files) > 1 and files[0].startswith("model-00001-of-")
    index = json.loads((result.output / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == _file_names(result.output)
    loaded = _loaded_state(result.output)
    assert all(torch.equal(loaded[k], v) for k, v in _reference(ref_dir, 2).items())


# ------------------------------------------------------------------------------------------------- dtype auto
def test_auto_dtype_takes_the_base_models_declared_dtype(run, tmp_path):
    run_dir, _ = run  # config.yaml points at the base model, whose config declares bfloat16
    result = _convert(run_dir, tmp_path / "auto")
    assert result.dtype == torch.bfloat16 and "base model" in result.dtype_source


def test_auto_dtype_without_run_config_keeps_the_checkpoints_float32(run, tmp_path):
    run_dir, ref_dir = run
    bare = tmp_path / "bare"
    shutil.copytree(run_dir / "global_step_2", bare / "global_step_2")  # no config.yaml next to it
    result = _convert(bare / "global_step_2", tmp_path / "out")
    assert result.dtype == torch.float32
    loaded = _loaded_state(result.output)
    assert all(torch.equal(loaded[k], v) for k, v in _reference(ref_dir, 2).items())


# ------------------------------------------------------------------------------------------------- discovery
def test_run_dir_converts_the_latest_step_to_run_dir_hf(run, tmp_path):
    run_dir, _ = run
    copy = tmp_path / "ckpt"
    shutil.copytree(run_dir, copy)
    assert cli_main(["convert", str(copy), "--no-progress"]) == 0
    assert (copy / "hf" / "global_step_2" / "model.safetensors").is_file()
    assert not (copy / "hf" / "global_step_1").exists()


def test_step_option_picks_an_earlier_step(run, tmp_path):
    run_dir, ref_dir = run
    result = _convert(run_dir, tmp_path / "s1", step=1, dtype="float32")
    assert result.step == 1
    loaded = _loaded_state(result.output)
    step1, step2 = _reference(ref_dir, 1), _reference(ref_dir, 2)
    assert all(torch.equal(loaded[k], v) for k, v in step1.items())
    assert not all(torch.equal(step1[k], step2[k]) for k in step1)  # the steps really differ


def test_step_folder_and_actor_folder_resolve_to_the_same_checkpoint(run):
    run_dir, _ = run
    by_run = locate_checkpoint(run_dir, "1")
    by_step = locate_checkpoint(run_dir / "global_step_1")
    by_actor = locate_checkpoint(run_dir / "global_step_1" / "actor")
    assert by_run == by_step == by_actor
    assert by_run.default_output() == run_dir / "hf" / "global_step_1"


def test_unknown_step_lists_the_available_ones(run):
    run_dir, _ = run
    with pytest.raises(CheckpointNotFoundError, match=r"global_step_7 does not exist.*available steps: 1, 2"):
        locate_checkpoint(run_dir, 7)
    with pytest.raises(CheckpointNotFoundError, match="contradicts"):
        locate_checkpoint(run_dir / "global_step_1", 2)


def _fake_run(root: Path, steps: list[int], tracker: str | None) -> Path:
    for step in steps:
        actor = root / f"global_step_{step}" / "actor"
        actor.mkdir(parents=True)
        (actor / "fsdp_config.json").write_text('{"FSDP_version": 2, "world_size": 2}')
    if tracker is not None:
        (root / "latest_checkpointed_iteration.txt").write_text(tracker)
    return root


def test_run_dir_without_tracker_takes_the_highest_step(tmp_path, caplog):
    run_dir = _fake_run(tmp_path, [5, 10, 20], tracker=None)
    assert locate_checkpoint(run_dir).step == 20
    assert "latest_checkpointed_iteration.txt" in caplog.text


def test_tracker_naming_a_deleted_step_is_reported(tmp_path):
    run_dir = _fake_run(tmp_path, [5, 10], tracker="15")
    with pytest.raises(CheckpointNotFoundError, match=r"global_step_15 does not exist.*available steps: 5, 10"):
        locate_checkpoint(run_dir)
    (run_dir / "latest_checkpointed_iteration.txt").write_text("oops")
    with pytest.raises(CheckpointNotFoundError, match="--step N"):
        locate_checkpoint(run_dir)


def test_folder_without_checkpoints_is_rejected_with_a_hint(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="default_local_dir"):
        locate_checkpoint(tmp_path)


# ------------------------------------------------------------------------------------------------- bad shards
def _step_copy(run_dir: Path, tmp_path: Path) -> Path:
    step_dir = tmp_path / "run" / "global_step_2"
    shutil.copytree(run_dir / "global_step_2", step_dir)
    return step_dir


def _assert_nothing_written(step_dir: Path) -> None:
    assert not (step_dir.parent / "hf").exists()


def test_missing_shard_stops_naming_the_file_and_writes_nothing(run, tmp_path, capsys):
    step_dir = _step_copy(run[0], tmp_path)
    (step_dir / "actor" / "model_world_size_2_rank_1.pt").unlink()
    assert cli_main(["convert", str(step_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "model_world_size_2_rank_1.pt is missing" in err and "world_size=2" in err
    _assert_nothing_written(step_dir)


def test_truncated_shard_stops_naming_the_file(run, tmp_path):
    step_dir = _step_copy(run[0], tmp_path)
    shard = step_dir / "actor" / "model_world_size_2_rank_1.pt"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ShardError, match=r"model_world_size_2_rank_1\.pt cannot be read.*truncated"):
        _convert(step_dir)
    _assert_nothing_written(step_dir)


class _RunsCodeWhenUnpickled:
    """A pickle payload: unpickling calls ``exec`` on a line that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def test_a_shard_that_would_run_code_when_unpickled_is_refused_unread(run, tmp_path):
    """A model file from elsewhere with a pickled callable next to real tensors: refused with the fix, and the
    callable never runs (the marker file is never created)."""
    step_dir = _step_copy(run[0], tmp_path)
    shard = step_dir / "actor" / "model_world_size_2_rank_1.pt"
    marker = tmp_path / "code-ran"
    state = torch.load(shard, weights_only=True)
    torch.save({**state, "payload": _RunsCodeWhenUnpickled(marker)}, shard)
    with pytest.raises(
        ShardError, match=r"rank_1\.pt holds objects other than tensors \(a pickled exec\).*could run code"
    ):
        _convert(step_dir)
    assert not marker.exists()
    _assert_nothing_written(step_dir)
    torch.load(shard, weights_only=False)  # the payload is real: a plain unpickle runs it
    assert marker.exists()


def test_shard_from_another_run_is_detected(run, tied_run, tmp_path):
    step_dir = _step_copy(run[0], tmp_path)
    foreign = tied_run[0] / "global_step_3" / "actor" / "model_world_size_4_rank_1.pt"
    shutil.copy(foreign, step_dir / "actor" / "model_world_size_2_rank_1.pt")
    with pytest.raises(ShardError, match=r"model_world_size_2_rank_1\.pt"):
        _convert(step_dir)
    _assert_nothing_written(step_dir)


def test_stray_rank_beyond_the_world_size_is_rejected(run, tmp_path):
    step_dir = _step_copy(run[0], tmp_path)
    actor = step_dir / "actor"
    shutil.copy(actor / "model_world_size_2_rank_1.pt", actor / "model_world_size_2_rank_2.pt")
    with pytest.raises(ShardError, match=r"model_world_size_2_rank_2\.pt does not belong"):
        _convert(step_dir)


# ------------------------------------------------------------------------------------------------- output folder
def test_existing_output_is_kept_unless_force(run, tmp_path):
    run_dir, _ = run
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(OutputExistsError, match="--force"):
        _convert(run_dir, out)
    assert (out / "keep.txt").read_text() == "user data"
    _convert(run_dir, out, force=True, verify=False)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary or backup folder left behind


def test_failed_verification_leaves_no_output(run, tmp_path, monkeypatch):
    import smartthinker_verl.convert.pipeline as pipeline

    def broken_verify(*args, **kwargs):
        raise VerificationError("simulated difference")

    monkeypatch.setattr(pipeline, "verify_model", broken_verify)
    with pytest.raises(VerificationError):
        _convert(run[0], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_verification_detects_a_tensor_that_differs(run, tmp_path):
    run_dir, ref_dir = run
    result = _convert(run_dir, tmp_path / "out", dtype="float32", verify=False)
    reference = _reference(ref_dir, 2)
    assert verify_model(result.output, torch.float32, reference) == len(reference)
    name = "model.layers.1.mlp.down_proj.weight"
    tampered = {**reference, name: reference[name].clone()}
    tampered[name][0, 0] = torch.nextafter(tampered[name][0, 0], torch.tensor(1.0))  # one ulp
    with pytest.raises(VerificationError, match="down_proj"):
        verify_model(result.output, torch.float32, tampered)


# ------------------------------------------------------------------------------------------------- extra files
def test_tokenizer_chat_template_and_generation_config_are_copied(run, tmp_path):
    from transformers import AutoTokenizer, GenerationConfig

    result = _convert(run[0], tmp_path / "out")
    hf = run[0] / "global_step_2" / "actor" / "huggingface"
    assert (result.output / "chat_template.jinja").read_text() == (hf / "chat_template.jinja").read_text()
    tokenizer = AutoTokenizer.from_pretrained(str(result.output))
    text = tokenizer.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False)
    assert "<|im_start|>user" in text
    generation = GenerationConfig.from_pretrained(str(result.output))
    assert generation.temperature == 0.6 and generation.top_p == 0.95


def test_model_card_describes_the_run_and_the_config_is_kept(run, tmp_path):
    run_dir, _ = run
    result = _convert(run_dir, tmp_path / "out")
    card = (result.output / "README.md").read_text()
    base = str(run_dir.parent / "base")
    assert f"base_model: {base}" in card
    assert "| Training step | 2 |" in card
    assert "`smartthinker`" in card
    assert "`algorithm.smartthinker.penalty`: `one_sided`" in card
    assert "deepscaler/train.parquet" in card and "aime24/test.parquet" in card
    assert "`val-core/aime24/acc/mean@1`: 0.125" in card and "`critic/score/mean`: 0.25" in card
    assert "actor/pg_loss" not in card
    assert "bfloat16" in card
    kept = (result.output / "training_config.yaml").read_text()
    assert kept == (run_dir / "config.yaml").read_text()


# ------------------------------------------------------------------------------------------------- LoRA
def _peft_merged_reference(ref_dir: Path, base: Path) -> dict[str, torch.Tensor]:
    """peft's own merge of the gathered LoRA model: the reference for the merged output."""
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    model.load_state_dict(_reference(ref_dir, 1))
    return model.merge_and_unload().state_dict()


def test_lora_adapter_is_merged_into_the_weights_by_default(lora_run, tmp_path):
    run_dir, ref_dir, base = lora_run
    result = _convert(run_dir, tmp_path / "merged", dtype="float32")
    assert result.adapter is None and not (result.output / "lora_adapter").exists()
    expected = _peft_merged_reference(ref_dir, base)
    loaded = _loaded_state(result.output)
    assert set(loaded) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=1e-6, msg=name)
    # the merge did change the adapted weights
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(
        loaded[q], _reference(ref_dir, 1)[f"base_model.model.{q.replace('.weight', '')}.base_layer.weight"]
    )
    assert "merged into the weights" in (result.output / "README.md").read_text()


def test_keep_adapter_writes_base_weights_and_a_peft_adapter(lora_run, tmp_path):
    from peft import PeftModel

    run_dir, ref_dir, base = lora_run
    result = _convert(run_dir, tmp_path / "kept", dtype="float32", keep_adapter=True)
    adapter = result.output / "lora_adapter"
    assert result.adapter == adapter
    meta = json.loads((adapter / "adapter_config.json").read_text())
    assert meta["r"] == 4 and meta["lora_alpha"] == 8
    reference = _reference(ref_dir, 1)
    loaded = _loaded_state(result.output)
    q = "model.layers.0.self_attn.q_proj"
    assert torch.equal(loaded[f"{q}.weight"], reference[f"base_model.model.{q}.base_layer.weight"])
    # base + adapter through peft gives the same model as the merged conversion
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(result.output)), str(adapter))
    merged = model.merge_and_unload().state_dict()
    expected = _peft_merged_reference(ref_dir, base)
    for name, tensor in expected.items():
        torch.testing.assert_close(merged[name], tensor, rtol=0, atol=1e-6, msg=name)


# ------------------------------------------------------------------------------------------------- console script
def test_console_script_converts_run_dir_to_the_given_out(run, tmp_path):
    run_dir, ref_dir = run
    out = tmp_path / "output" / "hf"
    script = Path(sys.executable).parent / "smartthinker-verl"
    proc = subprocess.run(
        [str(script), "convert", str(run_dir), "--out", str(out), "--dtype", "float32"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"step 2 -> {out}" in proc.stdout and "verified 27 tensors" in proc.stdout
    loaded = _loaded_state(out)
    assert all(torch.equal(loaded[k], v) for k, v in _reference(ref_dir, 2).items())


def test_recipe_convert_script_passes_options_through(run, tmp_path):
    run_dir, _ = run
    script = Path(__file__).resolve().parents[1] / "recipes" / "convert.sh"
    out = tmp_path / "recipe_out"
    proc = subprocess.run(
        ["bash", str(script), str(run_dir), "--step", "1", "--out", str(out), "--no-verify", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"step 1 -> {out}" in proc.stdout and "not verified" in proc.stdout
    missing = subprocess.run(["bash", str(script), "no_such_recipe"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "neither a run directory nor a recipe" in missing.stderr
