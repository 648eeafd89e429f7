"""Time and memory of ``smartthinker-verl convert`` on a checkpoint of a given model shape (random weights).

Builds a real FSDP2 checkpoint (W gloo CPU processes, ``fully_shard``, verl's ``FSDPCheckpointManager``; model
shards only, no optimizer state, which conversion never reads), then runs the console script once per setting in
a fresh process and samples its memory from /proc every 0.1 s: peak RSS, and peak anonymous RSS (the part that
cannot be given back; the rest is page cache of the memory-mapped shards, which the kernel reclaims under pressure).

    .venv/bin/python benchmarks/bench_convert.py --shape qwen2-1.5b --world-size 2 --workdir /tmp/bench_convert

Prints one Markdown table row per setting. The console script imports the package the environment finds: to
measure another checkout (an older version, say) against the same checkpoint, run with ``PYTHONPATH=<checkout>``
and ``--keep`` (a kept checkpoint in ``--workdir`` is reused).

``--shape qwen2-7b`` builds Qwen2-7B's shapes (7.6 B parameters: 30.5 GB of float32 shards; the build holds the
model once across the ranks, so it needs about 35 GB of memory and 50 GB of disk with a bfloat16 output).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fsdp_checkpoint as fc  # noqa: E402

SHAPES = {"qwen2-7b": fc.qwen2_7b_config, "qwen2-1.5b": fc.qwen2_1_5b_config, "tiny": fc.tiny_qwen2_config}


def _status_kib(pid: int) -> dict[str, int]:
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def measure(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; wall seconds and peak VmRSS / RssAnon (GiB)."""
    peak = {"VmRSS": 0, "RssAnon": 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while proc.poll() is None:
        sample = _status_kib(proc.pid)
        for key in peak:
            peak[key] = max(peak[key], sample.get(key, 0))
        time.sleep(0.1)
    wall = time.perf_counter() - start
    output = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    return {"wall_s": wall, "rss_gib": peak["VmRSS"] / 2**20, "anon_gib": peak["RssAnon"] / 2**20, "log": output}


def build(workdir: Path, shape: str, world_size: int) -> Path:
    run_dir = workdir / "ckpt"
    if (run_dir / "latest_checkpointed_iteration.txt").exists():
        print(f"reusing {run_dir}", file=sys.stderr)
        return run_dir
    base = fc.write_base_model(workdir / "base", SHAPES[shape](), with_weights=False)
    spec = fc.CheckpointSpec(
        base_model=str(base),
        run_dir=str(run_dir),
        steps=[1],
        world_size=world_size,
        init_on_meta=True,
        save_contents=["model", "extra"],
    )
    start = time.perf_counter()
    fc.build_checkpoint(spec)
    print(f"built {shape} checkpoint, world size {world_size}, in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-1.5b")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bench_convert")
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument(
        "--verify", choices=("both", "on", "off"), default="both", help="convert with --verify, without, or both"
    )
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint and outputs")
    args = parser.parse_args()

    workdir = Path(args.workdir)
    run_dir = build(workdir, args.shape, args.world_size)
    size = sum(p.stat().st_size for p in run_dir.glob("global_step_1/actor/model_world_size_*.pt"))
    script = str(Path(sys.executable).parent / "smartthinker-verl")
    print(f"\n{args.shape}, world size {args.world_size}, shards {size / 1e9:.2f} GB\n")
    print("| dtype | verify | wall (s) | peak RSS (GiB) | peak anonymous RSS (GiB) |")
    print("|---|---|---|---|---|")
    verifies = {"both": ("--no-verify", "--verify"), "on": ("--verify",), "off": ("--no-verify",)}[args.verify]
    for dtype in args.dtypes:
        for verify in verifies:
            out = workdir / f"hf_{dtype}"
            shutil.rmtree(out, ignore_errors=True)
            result = measure(
                [script, "convert", str(run_dir), "--out", str(out), "--dtype", dtype, verify, "--no-progress"]
            )
            print(
                f"| {dtype} | {verify.lstrip('-')} | {result['wall_s']:.1f} | {result['rss_gib']:.2f} | "
                f"{result['anon_gib']:.2f} |",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
