"""Preflight of a training run on its Ray cluster: ``smartthinker-verl doctor [--address A] [OVERRIDE ...]``.

It composes the recipe config as ``python -m smartthinker_verl.launch.train`` would, joins the Ray cluster the run
would join and runs tasks pinned to each alive node: the every-node checks, and the GPU checks on nodes with a Ray
``GPU`` resource (docs/gpu.md, section 4, lists them). Each check is a function of plain values (testable without
Ray or GPUs); a problem is one line with its fix, and exit code 2. A :data:`WARNING` is a cost the run will pay; it
never fails it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import SetupError

logger = logging.getLogger(__name__)

OK, PROBLEM, WARNING, SKIPPED, NOTE = "OK", "PROBLEM", "WARNING", "SKIPPED", "NOTE"
#: Bytes a checkpoint keeps per parameter: fp32 weights (4) + Adam's two fp32 moments (8), as verl's FSDP
#: checkpoint stores them (model_*.pt + optim_*.pt; the huggingface/ folder holds only config and tokenizer).
CHECKPOINT_BYTES_PER_PARAM = 12
#: bf16 and flash-attn 2 need Ampere; torch's CUDA 13 builds have no Volta kernels ("no kernel image" at the first op).
MIN_COMPUTE_CAPABILITY = (8, 0)
#: The checks that run only where the run has GPUs (reported SKIPPED elsewhere).
GPU_CHECKS = ("gpus", "torch_cuda", "compute_capability", "vllm", "flash_attn")
#: Environment the recipes (recipes/common.sh) turn into overrides; the plain CLI does not read it.
RECIPE_ENVIRONMENT = ("MODEL_PATH", "DATA_DIR", "NGPUS", "NNODES", "CHECKPOINT_DIR", "PROJECT", "EXPERIMENT")
#: How long the GPU task of a node may wait for Ray to grant its GPUs (held by another job or actor otherwise).
GPU_GRANT_TIMEOUT_S = 120
_PROBE_PREFIX = ".smartthinker-doctor-"
_SUBPROCESS_TIMEOUT_S = 300


@dataclass
class Finding:
    """One check on one node: ``status`` is OK, PROBLEM, WARNING, SKIPPED or NOTE; ``fix`` is set for a PROBLEM."""

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
    """What the composed config asks of the cluster (plain values: travels to Ray tasks)."""

    gpus_per_node: int
    nnodes: int
    needs_gpu: bool
    rollout: str
    checkpoint_dir: str
    checkpoint_bytes: int | None
    kept_checkpoints: int
    wandb: bool
    estimator: str
    flash_attn: bool
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def parameter_count(model_path: str) -> int | None:
    """Parameters of the model, from its weights' safetensors headers (no tensor is read; a sharded model's from the
    shards of ``model.safetensors.index.json``): a local folder, else the model's folder in the local Hugging Face
    cache, else the Hub's safetensors metadata (unless ``HF_HUB_OFFLINE``). None when none of these is readable from
    here (the disk check then only reports free space)."""
    from huggingface_hub import get_safetensors_metadata, snapshot_download
    from safetensors import safe_open

    folder, path_like = Path(model_path).expanduser(), model_path.startswith(("/", ".", "~"))
    if not folder.is_dir() and not path_like and model_path.count("/") == 1:
        with contextlib.suppress(Exception):  # else: not in the local cache
            folder = Path(snapshot_download(model_path, local_files_only=True))
    if folder.is_dir():
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            files = sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
        else:
            files = sorted(folder.glob("*.safetensors"))
        total = 0
        for file in files:
            with safe_open(str(file), framework="pt") as weights:
                total += sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())
        return total if files else None
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or path_like:
        return None
    try:
        return sum(get_safetensors_metadata(model_path, timeout=10).parameter_count.values())
    except Exception:  # unreachable hub, gated repo, no safetensors: the size stays unknown (a NOTE)
        logger.debug("no safetensors metadata for %s on the Hub", model_path, exc_info=True)
        return None


def saves_of_run(total_steps: int, save_freq: int) -> int:
    """Checkpoints verl writes: every ``save_freq`` steps and at the last step."""
    return -(-total_steps // save_freq) if save_freq > 0 and total_steps > 0 else 0


def requirements_from_config(config: Any) -> Requirements:
    """Plain requirements from a config of :func:`.compose.prepare`."""
    from smartthinker_verl.launch.compose import uses_flash_attn

    trainer, rollout = config.trainer, config.actor_rollout_ref.rollout
    parameters = parameter_count(str(config.actor_rollout_ref.model.path))
    saves = saves_of_run(int(trainer.total_training_steps or 0), int(trainer.save_freq or 0))
    keep = trainer.get("max_actor_ckpt_to_keep")
    return Requirements(
        gpus_per_node=int(trainer.n_gpus_per_node),
        nnodes=int(trainer.nnodes),
        needs_gpu=str(trainer.get("device", "cuda")) != "cpu",
        rollout=str(rollout.name),
        checkpoint_dir=str(trainer.default_local_dir),  # absolute: compose.prepare made it so
        checkpoint_bytes=parameters * CHECKPOINT_BYTES_PER_PARAM if parameters else None,
        kept_checkpoints=min(saves, int(keep)) if keep else saves,
        wandb="wandb" in [str(x) for x in (trainer.logger or [])],
        estimator=str(config.algorithm.adv_estimator),
        flash_attn=uses_flash_attn(config),
    )


def check_recipe_environment(environ: Mapping[str, str], recipe: str | None) -> list[Finding]:
    """The recipes' environment (NGPUS, CHECKPOINT_DIR, ...) set in a shell that runs the plain CLI: it checks its
    own arguments, not what the recipe would start."""
    ignored = [name for name in RECIPE_ENVIRONMENT if environ.get(name)]
    if recipe or not ignored:
        return []
    return [Finding(
        "recipe_environment", WARNING, f"{', '.join(ignored)} set here, but only the recipes read them: this checks "
        "the overrides given on its command line", "bash recipes/run_1.5b.sh --doctor-only (or run_7b.sh, ...) "
        "checks the run the recipe starts, with its environment",
    )]  # fmt: skip


def check_cluster(nodes: Sequence[Mapping[str, Any]], req: Requirements) -> list[Finding]:
    """``nodes``: ``{"name", "gpus"}`` of every alive node (``gpus``: its Ray GPU resource). A GPU run counts only
    the nodes with GPUs against ``trainer.nnodes`` (verl places no GPU worker elsewhere); a CPU run counts all."""
    names = ", ".join(f"{n['name']} ({n['gpus']:g} GPU)" for n in nodes)
    findings = [Finding("cluster", OK, f"{len(nodes)} alive node(s): {names}")]
    counted = [n for n in nodes if n["gpus"] > 0] if req.needs_gpu else list(nodes)
    if len(counted) < req.nnodes:
        what = "node(s) with a Ray GPU resource" if req.needs_gpu else "alive node(s)"
        findings.append(Finding(
            "cluster", PROBLEM, f"{len(counted)} {what}, the run needs trainer.nnodes={req.nnodes}",
            "start the missing nodes (`ray start --address=HEAD:6379` on each; Ray detects a node's GPUs) or "
            "lower NNODES (trainer.nnodes)",
        ))  # fmt: skip
    return findings


def check_gpu_count(ray_gpus: float, req: Requirements) -> Finding:
    """``ray_gpus``: the node's Ray ``GPU`` resource, what verl's resource pool can place there."""
    if ray_gpus < req.gpus_per_node:
        return Finding(
            "gpus", PROBLEM, f"Ray offers {ray_gpus:g} GPU(s) on this node, the run needs {req.gpus_per_node} per node",
            f"NGPUS={int(ray_gpus)} (trainer.n_gpus_per_node={int(ray_gpus)}), or start Ray on this node with its "
            "GPUs visible (CUDA_VISIBLE_DEVICES, `ray start --num-gpus`)",
        )  # fmt: skip
    return Finding("gpus", OK, f"Ray offers {ray_gpus:g} GPU(s), {req.gpus_per_node} used per node")


def check_torch_cuda(assigned: int, torch_info: Mapping[str, Any]) -> Finding:
    """torch, in Ray's ``CUDA_VISIBLE_DEVICES``, must see every GPU Ray assigned to the task."""
    seen = int(torch_info.get("count") or 0)
    if seen < assigned:
        why = torch_info.get("error") or f"CUDA_VISIBLE_DEVICES={torch_info.get('visible')!r}"
        return Finding(
            "torch_cuda", PROBLEM, f"Ray assigned {assigned} GPU(s), torch sees {seen} ({why})",
            f"an NVIDIA driver for torch's CUDA {torch_info.get('cuda') or ''} runtime (>= 580 for CUDA 13, README "
            "'GPU requirements'), and a Ray GPU resource that matches real GPUs (`ray start --num-gpus`)",
        )  # fmt: skip
    return Finding("torch_cuda", OK, f"torch {torch_info.get('torch')} sees the {assigned} GPU(s) Ray assigned")


def check_compute_capability(capabilities: Sequence[Sequence[int]]) -> Finding:
    if not capabilities:
        return Finding("compute_capability", NOTE, "not reported (torch sees no GPU: see torch_cuda)")
    low = tuple(min(tuple(c) for c in capabilities))
    if low < MIN_COMPUTE_CAPABILITY:
        return Finding(
            "compute_capability", PROBLEM, f"a GPU has compute capability {low[0]}.{low[1]} (< 8.0: no bf16, "
            "no flash-attn 2; CUDA 13 builds drop Volta)", "use Ampere or newer GPUs (A100, L40S, H100, ...)",
        )  # fmt: skip
    return Finding("compute_capability", OK, ", ".join(f"{a}.{b}" for a, b in sorted({tuple(c) for c in capabilities})))


def check_vllm(req: Requirements, result: Mapping[str, Any] | None) -> Finding:
    """The CUDA build of vLLM on a GPU node (the CPU build imports as well and only fails deep in the rollout);
    ``result``: what :data:`VLLM_PROBE` printed there, None where the run has no vLLM rollout."""
    if req.rollout != "vllm":
        return Finding("vllm", NOTE, f"not checked: rollout is {req.rollout!r}")
    if "error" in result:
        return Finding(
            "vllm", PROBLEM, f"vLLM does not import ({result['error']})",
            "pip install -e '.[gpu]' on this node (vllm 0.24.0 with torch 2.11.0, README 'GPU requirements')",
        )  # fmt: skip
    if result.get("device") != "cuda":
        return Finding(
            "vllm", PROBLEM, f"vLLM {result.get('version')} sees device {result.get('device')!r}, not cuda",
            "install the CUDA build of vLLM (pip install vllm==0.24.0) with torch==2.11.0 from PyPI",
        )  # fmt: skip
    return Finding("vllm", OK, f"vLLM {result.get('version')} sees cuda")


def check_flash_attn(req: Requirements, result: Mapping[str, Any] | None) -> Finding:
    """flash-attn on a GPU node, imported there (a build for another torch or CUDA fails at import)."""
    if not req.flash_attn:
        return Finding("flash_attn", NOTE, "not needed: the run trains with sdpa (+attention=sdpa)")
    if "error" in result:
        return Finding(
            "flash_attn", PROBLEM, f"flash-attn does not import ({result['error']}), but the "
            "run trains with flash_attention_2 and packed sequences",
            "install flash-attn on this node (docs/gpu.md, 'flash-attention'), or train with sdpa: add "
            "+attention=sdpa to the recipe command (docs/gpu.md, 'Without flash-attn')",
        )  # fmt: skip
    return Finding("flash_attn", OK, f"flash-attn {result.get('version')} imports")


def skipped_gpu_checks(reason: str) -> list[Finding]:
    """The GPU checks of a node where they do not run: SKIPPED, never passed."""
    return [Finding(check, SKIPPED, f"SKIPPED (no GPU): {reason}") for check in GPU_CHECKS]


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


def check_shared_dir(seen_tokens: Sequence[str], all_nodes: Sequence[str], error: str | None) -> Finding:
    """Each node wrote a probe named after itself; a shared folder shows every node's probe to every node."""
    if error:
        return Finding(
            "checkpoint_dir", PROBLEM, f"not writable: {error}",
            "CHECKPOINT_DIR (or trainer.default_local_dir) must be a folder this node can create and write",
        )  # fmt: skip
    missing = sorted(set(all_nodes) - set(seen_tokens))
    if missing:
        return Finding(
            "checkpoint_dir", PROBLEM, f"not the same folder on every node: the probe files of {missing} are "
            "not visible here", "use a shared filesystem mounted at the same path on every node (CHECKPOINT_DIR)",
        )  # fmt: skip
    return Finding("checkpoint_dir", OK, f"writable and shared by {len(all_nodes)} node(s)")


#: Run in a fresh interpreter by :func:`probe_gpus`; each prints one JSON line.
TORCH_PROBE = """import json, os, torch
facts = {'cuda': torch.version.cuda, 'torch': torch.__version__, 'count': 0, 'capabilities': [],
         'visible': os.environ.get('CUDA_VISIBLE_DEVICES')}
try:
    facts['count'] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(facts['count']):
        facts['capabilities'].append(list(torch.cuda.get_device_capability(i)))
except Exception as e:
    facts['error'] = f'{type(e).__name__}: {e}'[:300]
print(json.dumps(facts))"""
VLLM_PROBE = """import json, vllm
from vllm.platforms import current_platform
print(json.dumps({'version': vllm.__version__, 'device': str(current_platform.device_type)}))"""
FLASH_ATTN_PROBE = "import json, flash_attn\nprint(json.dumps({'version': flash_attn.__version__}))"


def _facts(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (CUDA, vLLM and flash-attn initialise there, not in Ray's worker): the
    JSON it prints, else ``{"error": ...}``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {_SUBPROCESS_TIMEOUT_S} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {"error": tail[:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def remove_probe(req: Requirements, node: str) -> None:
    with contextlib.suppress(OSError):
        (Path(req.checkpoint_dir) / _probe_name(req, node)).unlink()


def check_plugin(estimator: str) -> Finding:
    """:func:`.cluster_check.run_checks` on this node, as one finding."""
    try:
        from smartthinker_verl.launch.cluster_check import run_checks

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


def probe_node(req: Requirements, all_nodes: Sequence[str], write_error: str | None) -> list[Finding]:
    """The checks of every node, run once every node wrote its probe file: shared folder, plugin, disk, wandb."""
    directory = Path(req.checkpoint_dir)
    try:
        seen = [p.read_text() for p in directory.glob(f"{_PROBE_PREFIX}{req.token}-*")]
    except OSError:
        seen = []
    existing = next((p for p in (directory, *directory.parents) if p.exists()), directory)
    try:
        free: int | None = int(shutil.disk_usage(existing).free)
    except OSError:
        free = None
    try:
        netrc_has_wandb = "api.wandb.ai" in (Path.home() / ".netrc").read_text()
    except OSError:
        netrc_has_wandb = False
    return [
        check_shared_dir(seen, all_nodes, write_error),
        check_plugin(req.estimator),
        check_disk(free, req),
        check_wandb(req, os.environ, netrc_has_wandb),
    ]


def probe_gpus(req: Requirements, ray_gpus: float, assigned: int) -> list[Finding]:
    """The GPU checks of a node, run in a task that holds ``assigned`` of its GPUs (Ray's CUDA_VISIBLE_DEVICES)."""
    torch_info = _facts(TORCH_PROBE)
    return [
        check_gpu_count(ray_gpus, req),
        check_torch_cuda(assigned, torch_info),
        check_compute_capability(torch_info.get("capabilities") or []),
        check_vllm(req, _facts(VLLM_PROBE) if req.rollout == "vllm" else None),
        check_flash_attn(req, _facts(FLASH_ATTN_PROBE) if req.flash_attn else None),
    ]


def run_on_cluster(req: Requirements, address: str | None, runtime_env: dict) -> list[Finding]:
    """Tasks pinned to each alive node (hard node affinity): probe files, the every-node checks, the GPU checks on
    the nodes with a Ray GPU resource (in a task holding the GPUs the run holds there), then cleanup."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    temp_dir = None
    # address None: as verl's run_ppo does: RAY_ADDRESS, else the cluster `ray start` began on this machine, else new
    init_kwargs: dict[str, Any] = {"address": address, "runtime_env": runtime_env, "logging_level": logging.WARNING}
    if address == "local":  # a private local cluster (own temp dir), never one another user started here
        temp_dir = tempfile.mkdtemp(prefix="stvdoc", dir="/tmp")
        init_kwargs.update(_temp_dir=temp_dir, include_dashboard=False)
    ray.init(**init_kwargs)
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
        nodes = {
            n["NodeID"]: {"name": f"{n.get('NodeManagerAddress', '?')}/{n['NodeID'][:8]}",
                          "gpus": float(n.get("Resources", {}).get("GPU", 0))}
            for n in alive
        }  # fmt: skip
        findings = check_cluster(list(nodes.values()), req)

        def on(node_id: str, fn, **resources):
            strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
            return ray.remote(scheduling_strategy=strategy, max_retries=0, num_cpus=0, **resources)(fn)

        names = [n["name"] for n in nodes.values()]
        writes = ray.get([on(nid, write_probe).remote(req, n["name"]) for nid, n in nodes.items()])
        tasks = [on(nid, probe_node).remote(req, names, error) for nid, error in zip(nodes, writes, strict=True)]
        common = ray.get(tasks)
        gpu_tasks = {}
        for nid, node in nodes.items():
            if req.needs_gpu and node["gpus"] > 0:
                assigned = min(node["gpus"], req.gpus_per_node)
                assigned = int(assigned) if assigned >= 1 else assigned
                task = on(nid, probe_gpus, num_gpus=assigned)
                gpu_tasks[nid] = task.remote(req, node["gpus"], math.ceil(assigned))
        ready, _ = ray.wait(list(gpu_tasks.values()), num_returns=len(gpu_tasks), timeout=GPU_GRANT_TIMEOUT_S)
        for (nid, node), found in zip(nodes.items(), common, strict=True):
            if not req.needs_gpu:
                found += skipped_gpu_checks("trainer.device=cpu")
            elif nid not in gpu_tasks:
                found += skipped_gpu_checks("no Ray GPU resource on this node; the run places no GPU worker here")
            elif gpu_tasks[nid] in ready:
                found += ray.get(gpu_tasks[nid])
            else:
                ray.cancel(gpu_tasks[nid], force=True)
                found.append(Finding(
                    "gpus", PROBLEM, f"Ray did not grant this node's GPUs within {GPU_GRANT_TIMEOUT_S} s: another job "
                    "or actor holds them, and the run would wait for them too",
                    "stop what holds them (`ray list actors`, `ray job list`) and run the doctor again",
                ))  # fmt: skip
            findings += [replace(f, node=node["name"]) for f in found]
        ray.get([on(nid, remove_probe).remote(req, n["name"]) for nid, n in nodes.items()])
        return findings
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def ray_runtime_env(config: Any) -> dict:
    """The runtime env verl's ``run_ppo`` gives its Ray processes (so the checks see what training will see)."""
    from omegaconf import OmegaConf
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    extra = OmegaConf.select(config, "ray_kwargs.ray_init.runtime_env") or {}
    return OmegaConf.to_container(OmegaConf.merge(get_ppo_ray_runtime_env(config), extra), resolve=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from smartthinker_verl.launch.compose import add_recipe_arguments

    add_recipe_arguments(parser)
    parser.add_argument(
        "--address",
        help="Ray cluster (HOST:PORT); 'local': a private local Ray. Default: what the run's ray.init() joins "
        "(RAY_ADDRESS, else the cluster `ray start` began on this machine, else a new local one)",
    )
    parser.add_argument("--json", type=Path, help="also write every finding as JSON to this file")
    parser.add_argument(
        "--recipe", default=None, help="set by recipes/common.sh: the overrides are that recipe's (its environment "
        "applied); `bash recipes/run_1.5b.sh --doctor-only` runs the doctor that way",
    )  # fmt: skip


def _print(findings: Sequence[Finding]) -> None:
    for finding in findings:
        print(finding.line(), file=sys.stderr if finding.status in (PROBLEM, WARNING) else sys.stdout)


def run(args: argparse.Namespace) -> int:
    from smartthinker_verl.launch.compose import prepare

    findings = check_recipe_environment(os.environ, args.recipe)
    _print(findings)  # before composing: a config error stops the doctor there
    config = prepare(args.overrides, config_name=args.config_name, require_files=False)
    req = requirements_from_config(config)
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    print(
        f"doctor: {config.trainer.experiment_name}{f' ({args.recipe})' if args.recipe else ''} on "
        f"{address or 'the Ray cluster the run would join'}; {req.nnodes} node(s) x {req.gpus_per_node} GPU(s); "
        f"checkpoints {req.checkpoint_dir} (host {socket.gethostname()})",
        file=sys.stderr,
    )
    cluster_findings = run_on_cluster(req, address, ray_runtime_env(config))
    _print(cluster_findings)
    findings += cluster_findings
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(f) for f in findings], indent=2))
    problems, warnings, skipped = (sum(f.status == status for f in findings) for status in (PROBLEM, WARNING, SKIPPED))
    print(
        f"doctor: {problems} problem(s), {warnings} warning(s), {skipped} check(s) skipped"
        + (" (no GPU on a node: those checks did not run)" if skipped else ""),
        file=sys.stderr,
    )
    if problems:
        raise SetupError(f"{problems} problem(s), each above with its fix")
    return 0
