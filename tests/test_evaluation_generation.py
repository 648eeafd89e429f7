"""The generation loop's pieces without a model: resuming from part files, the data-parallel split, run seeds and
the vLLM engine's limits from the KV-cache arithmetic (docs/gpu.md, "GPU memory")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartthinker_verl.evaluation.generation import merge_parts, part_path, resume_pending, run_seed, shard
from smartthinker_verl.evaluation.problems import Problem
from smartthinker_verl.evaluation.records import read_records, record_key
from smartthinker_verl.launch.memory import KNOWN_MODELS, GiB, max_full_length_sequences


def _problems(n: int, benchmark: str = "b") -> list[Problem]:
    return [Problem(id=i, benchmark=benchmark, data_source="s", ground_truth=str(i), messages=[]) for i in range(n)]


def _line(problem_id: int, sample: int) -> str:
    return json.dumps({"id": problem_id, "sample": sample, "ground_truth": str(problem_id), "response": "r"}) + "\n"


def test_shards_cover_every_sample_once_and_mix_the_problems() -> None:
    pending = [(p, s) for p in _problems(5) for s in range(4)]
    shards = shard(pending, 3)
    assert sorted((p.id, s) for part in shards for p, s in part) == sorted((p.id, s) for p, s in pending)
    assert [len(part) for part in shards] == [7, 7, 6]
    assert all(len({p.id for p, _ in part}) == 5 for part in shards)  # round robin: every engine sees every problem
    assert shard(pending, 1) == [pending]


def test_run_seed_repeats_for_the_same_samples_and_changes_for_others() -> None:
    problems = _problems(3)
    first = [(p, s) for p in problems for s in (0, 1)]
    extension = [(p, s) for p in problems for s in (2, 3)]
    assert run_seed(0, first) == run_seed(0, list(first))
    assert len({run_seed(0, first), run_seed(1, first), run_seed(0, extension)}) == 3
    assert 0 <= run_seed(0, first) < 2**31


def test_parts_of_an_interrupted_run_are_merged_once_and_only_the_rest_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(_line(0, 0))
    part_path(path, 0).write_text(_line(0, 1) + _line(1, 0) + '{"id": 1, "samp')  # killed mid-line
    part_path(path, 1).write_text(_line(0, 0) + _line(2, 1))  # (0, 0) already merged before a crash: no duplicate
    pending = resume_pending(_problems(3), 2, path)
    assert not list(tmp_path.glob("*.part*"))
    assert sorted(record_key(r) for r in read_records(path)) == [("0", 0), ("0", 1), ("1", 0), ("2", 1)]
    assert sorted((p.id, s) for p, s in pending) == [(1, 1), (2, 0)]
    merge_parts(path)  # nothing left to merge: a no-op
    assert len(read_records(path)) == 4


def test_max_num_seqs_is_the_full_length_sequences_the_kv_cache_holds() -> None:
    """Qwen3-4B at the paper's protocol (32,768 + 2,048 tokens) on one 80 GB GPU at 0.9: about 12 (issue 27)."""
    qwen3 = KNOWN_MODELS["qwen3-4b-thinking-2507"]
    cache = 0.9 * 79.6 * GiB - 7.5 * GiB - 3 * GiB
    assert max_full_length_sequences(cache, qwen3, 34816) == 12
    assert max_full_length_sequences(cache, qwen3, 34816, tensor_parallel=2) == 25  # half the KV per token and GPU
    # The recipes' table (docs/gpu.md): 1.5B at 9,500 tokens in 41.5 GiB holds 163.
    assert max_full_length_sequences(41.5 * GiB, KNOWN_MODELS["deepseek-r1-distill-qwen-1.5b"], 9500) == 163


def test_vllm_engine_limits_default_to_the_protocols_length_and_the_cache_arithmetic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed")
    from transformers import Qwen2Config

    from smartthinker_verl.evaluation.backends.vllm import MAX_NUM_SEQS_CAP, engine_limits

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")  # vLLM's CPU build: the cache is this many GiB
    config = Qwen2Config(
        vocab_size=1000, hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
        intermediate_size=64, max_position_embeddings=131072,
    )  # fmt: skip
    limits = dict(max_model_len=None, max_num_seqs=None, tensor_parallel_size=1, gpu_memory_utilization=0.9)
    kv_per_token = 28 * 2 * 128 * 2 * 2  # layers x KV heads x head dim x (K, V) x bf16
    assert engine_limits(str(tmp_path), config, max_tokens=32768, **limits) == (
        34816, 4 * GiB // (kv_per_token * 34816)
    )  # fmt: skip
    config.max_position_embeddings = 8192  # a short-context model: its context, not more
    assert engine_limits(str(tmp_path), config, max_tokens=32768, **limits)[0] == 8192
    assert engine_limits(str(tmp_path), config, max_tokens=16, **limits) == (2064, 4 * GiB // (kv_per_token * 2064))
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1000")
    assert engine_limits(str(tmp_path), config, max_tokens=16, **limits) == (2064, MAX_NUM_SEQS_CAP)
    given = limits | {"max_model_len": 4096, "max_num_seqs": 7}
    assert engine_limits(str(tmp_path), config, max_tokens=16, **given) == (4096, 7)


def test_engines_take_the_visible_gpus_in_tensor_parallel_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from smartthinker_verl.errors import ConfigError
    from smartthinker_verl.evaluation.cli import _engine_devices

    def args(**given: object) -> argparse.Namespace:
        return argparse.Namespace(**{"backend": "vllm", "tensor_parallel_size": 1, "data_parallel_size": None} | given)

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert _engine_devices(args()) == [["4"], ["5"], ["6"], ["7"]]
    assert _engine_devices(args(tensor_parallel_size=2)) == [["4", "5"], ["6", "7"]]
    assert _engine_devices(args(tensor_parallel_size=2, data_parallel_size=1)) == [["4", "5"]]
    assert _engine_devices(args(backend="hf")) == [["4"]]
    with pytest.raises(ConfigError, match="needs 6 GPUs; 4 are visible"):
        _engine_devices(args(tensor_parallel_size=2, data_parallel_size=3))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU: the engines share the CPUs
    assert _engine_devices(args()) == [None]
    assert _engine_devices(args(data_parallel_size=2)) == [None, None]
