"""Preflight of a training run on its Ray cluster: ``smartthinker-verl doctor [--address A] [OVERRIDE ...]``.

It composes the recipe config exactly as ``python -m smartthinker_verl.training.train`` would (same overrides, same sdpa
fallback, same validation), then runs one Ray task on every alive node of the cluster (pinned with
``NodeAffinitySchedulingStrategy``; the cluster is ``--address`` (``local``: a private one), else the one the run's
``ray.init()`` would join: ``RAY_ADDRESS``, else a cluster ``ray start`` began on this machine, else a new local one)
and checks on each node what a long GPU job would otherwise discover late:

- GPUs: count against ``trainer.n_gpus_per_node``, NVIDIA driver and CUDA runtime (``nvidia-smi``,
  ``torch.version.cuda``), compute capability, ``torch.cuda`` works (a small matmul on every GPU), free memory
  against vLLM's reservation (``rollout.gpu_memory_utilization`` x total);
- software: vLLM imports and sees the GPU (when the rollout is vLLM), flash-attn importable or the sdpa fallback
  chosen by the driver;
- files: the checkpoint folder is writable from every node AND is the same folder everywhere (each node writes a
  probe file, every node must read all of them), free disk against the checkpoints the run keeps
  (:func:`checkpoint_bytes`), the model and data files readable;
- wandb credentials where wandb is a logger (or ``WANDB_MODE=offline``).

Every check is a small function of plain values (testable without Ray or GPUs). A GPU check on a node without GPUs
is reported ``SKIPPED (no GPU)``, never passed; when the run itself needs GPUs (``trainer.device`` is not ``cpu``),
a node without them is also a problem. Each problem is one line with its fix; the exit code is 2 if there is any.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

OK, PROBLEM, SKIPPED, NOTE = "OK", "PROBLEM", "SKIPPED", "NOTE"
#: Bytes a checkpoint keeps per parameter: fp32 weights (4) + Adam's two fp32 moments (8), as verl's FSDP
#: checkpoint stores them (model_*.pt + optim_*.pt; the huggingface/ folder holds only config and tokenizer).
CHECKPOINT_BYTES_PER_PARAM = 12
#: Parameter counts of the recipes' models, used when the model's config.json is not readable here.
KNOWN_PARAMETERS = {
    "deepseek-r1-distill-qwen-1.5b": 1_777_088_000,
    "deepseek-r1-distill-qwen-7b": 7_615_616_512,
    "qwen3-4b-thinking-2507": 4_022_468_096,
}
#: Lowest NVIDIA driver major for the CUDA 13 builds of torch 2.11 / vLLM 0.24, and the lowest compute capability
#: of the recipes (bf16 and flash-attn 2 need Ampere).
MIN_DRIVER_MAJOR_CUDA13 = 580
MIN_COMPUTE_CAPABILITY = (8, 0)
_PROBE_PREFIX = ".smartthinker-doctor-"
_SUBPROCESS_TIMEOUT_S = 300


@dataclass
class Finding:
    """One check on one node: ``status`` is OK, PROBLEM, SKIPPED or NOTE; ``fix`` is set for a PROBLEM."""

    check: str
    status: str
    message: str
    fix: str = ""
    node: str = "driver"

    def line(self) -> str:
        text = f"[{self.status}] {self.node} {self.check}: {self.message}"
        return f"{text}. Fix: {self.fix}" if self.fix else text


@dataclass
class Requirements:
    """What the composed config asks of every node (plain values: travels to Ray tasks)."""

    gpus_per_node: int
    nnodes: int
    needs_gpu: bool
    rollout: str
    gpu_memory_utilization: float
    attention: str
    checkpoint_dir: str
    checkpoint_bytes: int | None
    kept_checkpoints: int
    wandb: bool
    model_path: str
    estimator: str = "smartthinker"
    data_files: list[str] = field(default_factory=list)
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


# ------------------------------------------------------------------------------------------------ sizing


def parameter_count(model_path: str) -> int | None:
    """Parameters of a decoder-only transformer from its ``config.json`` (local folder), else the known table."""
    config_file = Path(model_path).expanduser() / "config.json"
    if config_file.is_file():
        try:
            return parameters_from_hf_config(json.loads(config_file.read_text()))
        except (KeyError, TypeError, ValueError):
            logger.debug("cannot size %s from its config.json", model_path, exc_info=True)
    return KNOWN_PARAMETERS.get(Path(model_path.rstrip("/")).name.lower())


def parameters_from_hf_config(config: Mapping[str, Any]) -> int:
    """Embedding (+ untied head) + per layer attention (q, k, v, o with biases as Qwen2) + gated MLP + norms."""
    hidden, layers, vocab = int(config["hidden_size"]), int(config["num_hidden_layers"]), int(config["vocab_size"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    inter = int(config["intermediate_size"])
    q, kv = heads * head_dim, kv_heads * head_dim
    bias = q + 2 * kv if config.get("attention_bias", config.get("model_type") == "qwen2") else 0
    attention = hidden * q + 2 * hidden * kv + q * hidden + bias
    mlp = 3 * hidden * inter
    per_layer = attention + mlp + 2 * hidden
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", False) else 2)
    return embeddings + layers * per_layer + hidden


def saves_of_run(total_steps: int, save_freq: int) -> int:
    """Checkpoints verl writes: every ``save_freq`` steps and at the last step."""
    if save_freq <= 0 or total_steps <= 0:
        return 0
    return total_steps // save_freq + (1 if total_steps % save_freq else 0)


def checkpoint_bytes(parameters: int) -> int:
    """Bytes of one actor checkpoint (all ranks together)."""
    return parameters * CHECKPOINT_BYTES_PER_PARAM


def requirements_from_config(config: Any) -> Requirements:
    """Plain requirements from a composed recipe config."""
    from omegaconf import OmegaConf

    trainer, rollout = config.trainer, config.actor_rollout_ref.rollout
    parameters = parameter_count(str(config.actor_rollout_ref.model.path))
    total = int(trainer.total_training_steps or 0)
    saves = saves_of_run(total, int(trainer.save_freq or 0))
    keep = trainer.get("max_actor_ckpt_to_keep")
    kept = min(saves, int(keep)) if keep else saves
    override = OmegaConf.select(config, "actor_rollout_ref.model.override_config.attn_implementation")
    attention = str(override) if override else "flash_attention_2"
    data_files: list[str] = []
    for key in ("data.train_files", "data.val_files"):
        value = OmegaConf.select(config, key)
        data_files += [str(v) for v in value] if OmegaConf.is_list(value) else ([str(value)] if value else [])
    # Relative paths are relative to the launch folder (the driver's), not to a Ray worker's.
    data_files = [_absolute(name) for name in data_files]
    directory = _absolute(str(trainer.default_local_dir))
    model = str(config.actor_rollout_ref.model.path)
    model = _absolute(model) if model.startswith(("./", "../")) else model
    return Requirements(
        gpus_per_node=int(trainer.n_gpus_per_node),
        nnodes=int(trainer.nnodes),
        needs_gpu=str(trainer.get("device", "cuda")) != "cpu",
        rollout=str(rollout.name),
        gpu_memory_utilization=float(rollout.gpu_memory_utilization),
        attention=attention,
        checkpoint_dir=directory,
        checkpoint_bytes=checkpoint_bytes(parameters) if parameters else None,
        kept_checkpoints=kept,
        wandb="wandb" in [str(x) for x in (trainer.logger or [])],
        model_path=model,
        estimator=str(config.algorithm.adv_estimator),
        data_files=data_files,
    )


def _absolute(path: str) -> str:
    if "://" in path or Path(path).expanduser().is_absolute():
        return path
    return str(Path.cwd() / path)


# ---------------------------------------------------------------------------------------- pure checks


def check_gpu_count(count: int, req: Requirements) -> Finding:
    if count == 0:
        if req.needs_gpu:
            return Finding(
                "gpus", PROBLEM, f"no GPU visible, the run needs {req.gpus_per_node} per node",
                "run on GPU nodes (check `nvidia-smi` and CUDA_VISIBLE_DEVICES), or lower NGPUS / "
                "trainer.n_gpus_per_node",
            )  # fmt: skip
        return Finding("gpus", SKIPPED, "SKIPPED (no GPU): trainer.device=cpu")
    if count < req.gpus_per_node:
        return Finding(
            "gpus", PROBLEM, f"{count} GPU(s) visible, the run needs {req.gpus_per_node} per node",
            f"NGPUS={count} (trainer.n_gpus_per_node={count}) or free the GPUs (CUDA_VISIBLE_DEVICES)",
        )  # fmt: skip
    return Finding("gpus", OK, f"{count} GPU(s), {req.gpus_per_node} used per node")


def check_driver(driver: str | None, cuda_runtime: str | None) -> Finding:
    """NVIDIA driver against the CUDA runtime torch was built with (CUDA 13 needs driver >= 580)."""
    if not driver:
        return Finding("driver", SKIPPED, "SKIPPED (no GPU): nvidia-smi not found or no GPU")
    try:
        major = int(driver.split(".")[0])
    except ValueError:
        return Finding("driver", PROBLEM, f"unreadable driver version {driver!r}", "check `nvidia-smi`")
    cuda_major = int(cuda_runtime.split(".")[0]) if cuda_runtime and cuda_runtime[0].isdigit() else None
    if cuda_major is not None and cuda_major >= 13 and major < MIN_DRIVER_MAJOR_CUDA13:
        return Finding(
            "driver", PROBLEM, f"NVIDIA driver {driver} is too old for torch's CUDA {cuda_runtime} runtime",
            f"install driver >= {MIN_DRIVER_MAJOR_CUDA13} (README 'GPU requirements')",
        )  # fmt: skip
    return Finding("driver", OK, f"NVIDIA driver {driver}, torch CUDA runtime {cuda_runtime}")


def check_compute_capability(capabilities: Sequence[tuple[int, int]]) -> Finding:
    if not capabilities:
        return Finding("compute_capability", SKIPPED, "SKIPPED (no GPU)")
    low = min(capabilities)
    if low < MIN_COMPUTE_CAPABILITY:
        return Finding(
            "compute_capability", PROBLEM, f"a GPU has compute capability {low[0]}.{low[1]} (< 8.0: no bf16, "
            "no flash-attn 2; CUDA 13 builds drop Volta)", "use Ampere or newer GPUs (A100, L40S, H100, ...)",
        )  # fmt: skip
    return Finding("compute_capability", OK, ", ".join(f"{a}.{b}" for a, b in sorted(set(capabilities))))


def check_gpu_memory(gpus: Sequence[Mapping[str, float]], fraction: float) -> Finding:
    """Free memory of every GPU against vLLM's reservation ``fraction * total`` (MiB values)."""
    if not gpus:
        return Finding("gpu_memory", SKIPPED, "SKIPPED (no GPU)")
    short = [
        f"GPU {i}: {g['free_mib'] / 1024:.1f} GiB free < {fraction} x {g['total_mib'] / 1024:.1f} GiB"
        for i, g in enumerate(gpus)
        if g["free_mib"] < fraction * g["total_mib"]
    ]
    if short:
        return Finding(
            "gpu_memory", PROBLEM, f"vLLM cannot reserve its memory ({'; '.join(short)})",
            "stop the processes holding GPU memory (nvidia-smi) or lower "
            "actor_rollout_ref.rollout.gpu_memory_utilization",
        )  # fmt: skip
    return Finding("gpu_memory", OK, f"every GPU has >= {fraction} x total free for vLLM")


def check_matmul(results: Sequence[str | None]) -> Finding:
    """``results``: per GPU None (matmul correct) or the error text."""
    if not results:
        return Finding("torch_cuda", SKIPPED, "SKIPPED (no GPU)")
    errors = [f"GPU {i}: {r}" for i, r in enumerate(results) if r]
    if errors:
        return Finding(
            "torch_cuda", PROBLEM, f"a matmul failed ({'; '.join(errors)[:300]})",
            "check the driver/CUDA pairing (README 'GPU requirements') and `python -c 'import torch; "
            "print(torch.cuda.is_available())'` on that node",
        )  # fmt: skip
    return Finding("torch_cuda", OK, f"matmul on {len(results)} GPU(s)")


def check_vllm(req: Requirements, result: Mapping[str, Any] | None, gpu_count: int) -> Finding:
    if req.rollout != "vllm":
        return Finding("vllm", NOTE, f"not checked: rollout is {req.rollout!r}")
    if result is None or not result.get("imported"):
        error = (result or {}).get("error", "not run")
        return Finding(
            "vllm", PROBLEM, f"vLLM does not import ({error})",
            "pip install -e '.[gpu]' on this node (vllm 0.24.0 with torch 2.11.0, README 'GPU requirements')",
        )  # fmt: skip
    if gpu_count == 0:
        return Finding("vllm", SKIPPED, f"SKIPPED (no GPU): vLLM {result.get('version')} imports")
    if result.get("device") != "cuda":
        return Finding(
            "vllm", PROBLEM, f"vLLM {result.get('version')} sees device {result.get('device')!r}, not cuda",
            "install the CUDA build of vLLM (pip install vllm==0.24.0) with torch==2.11.0 from PyPI",
        )  # fmt: skip
    return Finding("vllm", OK, f"vLLM {result.get('version')} sees cuda")


def check_attention(req: Requirements, flash_attn: Mapping[str, Any], gpu_count: int) -> Finding:
    if req.attention != "flash_attention_2":
        return Finding("attention", NOTE, f"{req.attention} (the run does not use flash-attn)")
    if not flash_attn.get("found"):
        return Finding(
            "attention", PROBLEM, "the run trains with flash_attention_2 but flash-attn is not installed here",
            "install flash-attn on every node (docs/gpu.md 'flash-attention'), or run with "
            "+actor_rollout_ref.model.override_config.attn_implementation=sdpa "
            "actor_rollout_ref.model.use_remove_padding=false",
        )  # fmt: skip
    if gpu_count == 0:
        return Finding("attention", SKIPPED, "SKIPPED (no GPU): flash-attn is installed, not imported")
    if flash_attn.get("error"):
        return Finding(
            "attention", PROBLEM, f"flash-attn does not import ({flash_attn['error']})",
            "rebuild flash-attn against this torch (docs/gpu.md 'flash-attention')",
        )  # fmt: skip
    return Finding("attention", OK, f"flash-attn {flash_attn.get('version')}")


def check_disk(free_bytes: int | None, req: Requirements) -> Finding:
    if free_bytes is None:
        return Finding("disk", PROBLEM, f"cannot stat {req.checkpoint_dir}", "see the checkpoint_dir finding")
    if req.checkpoint_bytes is None:
        return Finding("disk", NOTE, f"{free_bytes / 1e9:.0f} GB free; the model's size is unknown, not compared")
    need = req.checkpoint_bytes * req.kept_checkpoints
    what = f"{req.kept_checkpoints} checkpoint(s) x {req.checkpoint_bytes / 1e9:.1f} GB = {need / 1e9:.0f} GB"
    if free_bytes < need:
        return Finding(
            "disk", PROBLEM, f"{free_bytes / 1e9:.0f} GB free in {req.checkpoint_dir}, the run keeps {what}",
            "free disk, point CHECKPOINT_DIR elsewhere, or lower trainer.max_actor_ckpt_to_keep / raise "
            "trainer.save_freq",
        )  # fmt: skip
    return Finding("disk", OK, f"{free_bytes / 1e9:.0f} GB free for {what}")


def check_wandb(req: Requirements, environ: Mapping[str, str], netrc_has_wandb: bool) -> Finding:
    if not req.wandb:
        return Finding("wandb", NOTE, "not a logger of this run")
    mode = environ.get("WANDB_MODE", "")
    if mode in ("offline", "disabled", "dryrun"):
        return Finding("wandb", OK, f"WANDB_MODE={mode} (sync later: `wandb sync wandb/offline-run-*`)")
    if environ.get("WANDB_API_KEY") or netrc_has_wandb:
        return Finding("wandb", OK, "credentials found (WANDB_API_KEY or ~/.netrc)")
    return Finding(
        "wandb", PROBLEM, "wandb is a logger but this node has no credentials (the run would fail at its first log)",
        "`wandb login` on every node, or WANDB_API_KEY=... (submit_ray_job.sh forwards it), or WANDB_MODE=offline "
        "and `wandb sync` later, or trainer.logger=[console,file]",
    )  # fmt: skip


def check_paths(req: Requirements, readable: Mapping[str, bool], model_ok: bool | None) -> list[Finding]:
    findings = []
    missing = [name for name, ok in readable.items() if not ok]
    if missing:
        findings.append(
            Finding(
                "data",
                PROBLEM,
                f"not readable here: {', '.join(missing)} (data.train_files / data.val_files)",
                "put the data on a filesystem every node mounts at the same path and set DATA_DIR "
                "(data_preprocess/, docs/gpu.md)",
            )  # fmt: skip
        )
    elif readable:
        findings.append(Finding("data", OK, f"{len(readable)} data file(s) readable"))
    if model_ok is None:
        findings.append(Finding("model", NOTE, f"{req.model_path}: a hub id, downloaded by each node on first use"))
    elif not model_ok:
        findings.append(
            Finding(
                "model",
                PROBLEM,
                f"{req.model_path} has no readable config.json here",
                "set MODEL_PATH to a model folder every node sees at that path",
            )  # fmt: skip
        )
    else:
        findings.append(Finding("model", OK, f"{req.model_path} readable"))
    return findings


def check_shared_dir(node: str, seen_tokens: Sequence[str], all_nodes: Sequence[str], error: str | None) -> Finding:
    """Each node wrote a probe named after itself; a shared folder shows every node's probe to every node."""
    if error:
        return Finding(
            "checkpoint_dir", PROBLEM, f"not writable: {error}",
            "CHECKPOINT_DIR (or trainer.default_local_dir) must be a folder this node can create and write",
            node,
        )  # fmt: skip
    missing = sorted(set(all_nodes) - set(seen_tokens))
    if missing:
        return Finding(
            "checkpoint_dir", PROBLEM, f"not the same folder on every node: the probe files of {missing} are "
            "not visible here", "use a shared filesystem mounted at the same path on every node (CHECKPOINT_DIR)",
            node,
        )  # fmt: skip
    return Finding("checkpoint_dir", OK, f"writable and shared by {len(all_nodes)} node(s)", node=node)


# ----------------------------------------------------------------------------------------- node probes


def _python(code: str) -> tuple[bool, str]:
    """Run ``code`` in a fresh interpreter (vLLM / flash-attn imports initialise CUDA: keep them out of Ray's)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {_SUBPROCESS_TIMEOUT_S} s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return False, tail[:300]
    return True, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def gpu_facts() -> dict[str, Any]:
    """nvidia-smi's view of the node (empty lists without GPUs)."""
    facts: dict[str, Any] = {"driver": None, "gpus": [], "capabilities": []}
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return facts
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version,memory.total,memory.free,compute_cap",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        facts["error"] = str(exc)
        return facts
    for row in out.strip().splitlines():
        name, driver, total, free, cap = (x.strip() for x in row.split(","))
        facts["driver"] = driver
        facts["gpus"].append({"name": name, "total_mib": float(total), "free_mib": float(free)})
        major, _, minor = cap.partition(".")
        facts["capabilities"].append((int(major), int(minor or 0)))
    return facts


def torch_facts() -> dict[str, Any]:
    """torch's CUDA runtime, GPU count and a matmul per GPU (in a subprocess)."""
    code = (
        "import json, torch\n"
        "n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
        "res = []\n"
        "for i in range(n):\n"
        "    try:\n"
        "        a = torch.ones(256, 256, device=f'cuda:{i}')\n"
        "        ok = float((a @ a)[0, 0]) == 256.0\n"
        "        res.append(None if ok else 'wrong result')\n"
        "    except Exception as e:\n"
        "        res.append(f'{type(e).__name__}: {e}')\n"
        "print(json.dumps({'cuda': torch.version.cuda, 'count': n, 'matmul': res, 'torch': torch.__version__}))"
    )
    ok, out = _python(code)
    return json.loads(out) if ok else {"cuda": None, "count": 0, "matmul": [], "error": out}


def vllm_facts() -> dict[str, Any]:
    code = (
        "import json, vllm\n"
        "from vllm.platforms import current_platform\n"
        "print(json.dumps({'imported': True, 'version': vllm.__version__, "
        "'device': str(current_platform.device_type)}))"
    )
    ok, out = _python(code)
    return json.loads(out) if ok else {"imported": False, "error": out}


def flash_attn_facts(import_it: bool) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        return {"found": False}
    if not import_it:
        return {"found": True}
    ok, out = _python("import flash_attn; print(flash_attn.__version__)")
    return {"found": True, "version": out} if ok else {"found": True, "error": out}


def _netrc_has_wandb() -> bool:
    netrc = Path.home() / ".netrc"
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def _probe_name(req: Requirements, node: str) -> str:
    return f"{_PROBE_PREFIX}{req.token}-" + "".join(c if c.isalnum() or c in ".-" else "_" for c in node)


def write_probe(req: Requirements, node: str) -> str | None:
    """Create the checkpoint folder and write this node's probe file; the error text, or None."""
    try:
        directory = Path(req.checkpoint_dir)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / _probe_name(req, node)).write_text(node)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def read_probes(req: Requirements) -> list[str]:
    try:
        return [p.read_text() for p in Path(req.checkpoint_dir).glob(f"{_PROBE_PREFIX}{req.token}-*")]
    except OSError:
        return []


def remove_probe(req: Requirements, node: str) -> None:
    probe = Path(req.checkpoint_dir) / _probe_name(req, node)
    try:
        probe.unlink()
    except OSError:
        pass


def check_plugin(estimator: str) -> Finding:
    """verl loads the plugin here and its estimator and scorer give the paper's worked example
    (:mod:`smartthinker_verl.training.cluster_check`)."""
    try:
        from smartthinker_verl.training.cluster_check import run_checks

        report = run_checks(estimator)
    except Exception as exc:  # any failure here is what the run would hit
        report = {"ok": False, "errors": [f"{type(exc).__name__}: {exc}"]}
    if not report.get("ok"):
        return Finding(
            "plugin", PROBLEM, "; ".join(report.get("errors") or ["failed"])[:400],
            "install the project on this node (pip install -e .) or ship it with VERL_USE_EXTERNAL_MODULES="
            "smartthinker_verl.plugin (recipes/submit_ray_job.sh does)",
        )  # fmt: skip
    return Finding("plugin", OK, f"verl loads SmartThinker; {estimator} and the scorer pass the worked example")


def probe_node(req: Requirements, node: str) -> list[dict[str, Any]]:
    """Every per-node check except the shared folder (needs all probes first); findings as dicts."""
    gpu = gpu_facts()
    torch_info = torch_facts()
    count = max(len(gpu["gpus"]), int(torch_info.get("count") or 0))
    findings = [
        check_plugin(req.estimator),
        check_gpu_count(count, req),
        check_driver(gpu["driver"], torch_info.get("cuda")),
        check_compute_capability(gpu["capabilities"]),
        check_matmul(torch_info.get("matmul") or []),
        check_gpu_memory(gpu["gpus"], req.gpu_memory_utilization),
        check_vllm(req, vllm_facts() if req.rollout == "vllm" else None, count),
        check_attention(req, flash_attn_facts(import_it=count > 0), count),
    ]
    try:
        usage = shutil.disk_usage(_existing_parent(req.checkpoint_dir))
        free = int(usage.free)
    except OSError:
        free = None
    findings.append(check_disk(free, req))
    findings.append(check_wandb(req, os.environ, _netrc_has_wandb()))
    readable = {name: os.path.isfile(name) and os.access(name, os.R_OK) for name in req.data_files if "://" not in name}
    local_model = req.model_path.startswith(("/", "./", "../", "~"))
    model_ok = os.access(Path(req.model_path).expanduser() / "config.json", os.R_OK) if local_model else None
    findings += check_paths(req, readable, model_ok)
    for finding in findings:
        finding.node = node
    return [asdict(f) for f in findings]


def _existing_parent(path: str) -> str:
    current = Path(path)
    while not current.exists() and current.parent != current:
        current = current.parent
    return str(current)


# ------------------------------------------------------------------------------------------- on Ray


def run_on_cluster(req: Requirements, address: str | None, runtime_env: dict | None = None) -> list[Finding]:
    """One task per alive node (hard node affinity): probe files, then every check, then cleanup."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    temp_dir = None
    init_kwargs: dict[str, Any] = {"runtime_env": runtime_env or {}, "logging_level": logging.WARNING}
    if address == "local":  # a private local cluster (own temp dir), never one another user started here
        temp_dir = tempfile.mkdtemp(prefix="stvdoc", dir="/tmp")
        init_kwargs.update(address="local", _temp_dir=temp_dir, include_dashboard=False)
    elif address:
        init_kwargs["address"] = address
    # else: as verl's run_ppo does: RAY_ADDRESS, else the cluster `ray start` began on this machine, else a new one
    ray.init(**init_kwargs)
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        nodes = {n["NodeID"]: f"{n.get('NodeManagerAddress', '?')}/{n['NodeID'][:8]}" for n in alive}
        findings = [Finding("cluster", OK, f"{len(nodes)} alive node(s): {', '.join(nodes.values())}")]
        if len(nodes) < req.nnodes:
            findings.append(
                Finding(
                    "cluster",
                    PROBLEM,
                    f"{len(nodes)} alive node(s), the run needs trainer.nnodes={req.nnodes}",
                    "start the missing nodes (`ray start --address=HEAD:6379`) or lower NNODES",
                )  # fmt: skip
            )

        def on(node_id: str, fn):
            strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
            return ray.remote(num_cpus=0, scheduling_strategy=strategy, max_retries=0)(fn)

        names = list(nodes.values())
        writes = ray.get([on(nid, write_probe).remote(req, name) for nid, name in nodes.items()])
        seen = ray.get([on(nid, read_probes).remote(req) for nid in nodes])
        results = ray.get([on(nid, probe_node).remote(req, name) for nid, name in nodes.items()])
        ray.get([on(nid, remove_probe).remote(req, name) for nid, name in nodes.items()])
        for name, error, tokens, node_findings in zip(names, writes, seen, results, strict=True):
            findings.append(check_shared_dir(name, tokens, names, error))
            findings += [Finding(**f) for f in node_findings]
        return findings
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def ray_runtime_env(config: Any) -> dict:
    """The runtime env verl's ``run_ppo`` gives its Ray processes (so the checks see what training will see)."""
    from omegaconf import OmegaConf

    try:
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

        env = get_ppo_ray_runtime_env(config)
    except Exception:  # older/newer verl: the plain environment is still a useful check
        logger.debug("verl's runtime env unavailable", exc_info=True)
        return {}
    extra = OmegaConf.select(config, "ray_kwargs.ray_init.runtime_env")
    if extra:
        env = OmegaConf.to_container(OmegaConf.merge(env, extra), resolve=True)
    return dict(env)


# ---------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="the recipe's Hydra overrides")
    parser.add_argument(
        "--address",
        help="Ray cluster (HOST:PORT); 'local': a private local Ray. Default: what the run's ray.init() joins "
        "(RAY_ADDRESS, else the cluster `ray start` began on this machine, else a new local one)",
    )
    parser.add_argument("--config-name", default=None, help="recipe yaml (default: the SmartThinker recipe)")
    parser.add_argument("--json", type=Path, help="also write every finding as JSON to this file")


def run(args: argparse.Namespace) -> int:
    from smartthinker_verl.training.recipe_config import DEFAULT_CONFIG_NAME, RecipeConfigError, prepare

    try:
        config = prepare(args.overrides, config_name=args.config_name or DEFAULT_CONFIG_NAME, require_files=False)
    except RecipeConfigError as exc:
        print(f"[PROBLEM] driver config: {exc}", file=sys.stderr)
        return 2
    req = requirements_from_config(config)
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    print(
        f"doctor: {config.trainer.experiment_name} on {address or 'the Ray cluster the run would join'}; "
        f"{req.nnodes} node(s) x "
        f"{req.gpus_per_node} GPU(s); checkpoints {req.checkpoint_dir} (host {socket.gethostname()})",
        file=sys.stderr,
    )
    findings = run_on_cluster(req, address, ray_runtime_env(config))
    for finding in findings:
        print(finding.line(), file=sys.stderr if finding.status == PROBLEM else sys.stdout)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in findings], indent=2))
    problems = [f for f in findings if f.status == PROBLEM]
    skipped = sum(f.status == SKIPPED for f in findings)
    print(
        f"doctor: {len(problems)} problem(s), {skipped} check(s) skipped"
        + (" (no GPU on a node: those checks did not run)" if skipped else ""),
        file=sys.stderr,
    )
    return 2 if problems else 0
