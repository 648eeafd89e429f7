"""Time and memory of ``smartthinker-verl convert`` on a checkpoint of a given model shape (random weights).

Builds a real FSDP2 checkpoint (W gloo CPU processes, ``fully_shard``, verl's ``FSDPCheckpointManager``; model
shards only, no optimizer state, which conversion never reads), then runs the console script once per setting in
a fresh process and samples its memory from /proc every 0.1 s: peak RSS, and peak anonymous RSS (the part that
cannot be given back; the rest is page cache of the memory-mapped shards, which the kernel reclaims under pressure).

    .venv/bin/python benchmarks/bench_convert.py --shape qwen2-1.5b --world-size 2 --workdir /tmp/bench_convert

Prints one Markdown table row per setting. ``--writers`` compares the converter's own streaming writer (``stream``:
one tensor in memory at a time, pages of joined shard pieces given back) with what the libraries offer for the
same output: ``stream-no-release`` (the same writer without giving pages back), ``safetensors`` (the library's
``save_file`` once per output file, so a whole file's tensors are in memory) and ``hub`` (``huggingface_hub``'s
``save_torch_state_dict`` on the whole state dict, which shards it itself). The alternatives replace the writer in
the converter's own process (same reading, joining and casting), so only the writing differs.
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

SHAPES = {"qwen2-1.5b": fc.qwen2_1_5b_config, "tiny": fc.tiny_qwen2_config}
WRITERS = ("stream", "stream-no-release", "safetensors", "hub")

#: Runs the converter's CLI with its writer replaced (argv[1]: the writer; the rest: the CLI's arguments).
_ALTERNATIVE_WRITER = """
import sys
from smartthinker_verl.cli import main
from smartthinker_verl.convert import pipeline, safetensors_writer as sw
from smartthinker_verl.convert.pages import PageReleaser

writer, argv = sys.argv[1], sys.argv[2:]

def write_with_safetensors(out_dir, specs, produce, max_file_bytes, on_tensor=None):
    from safetensors.torch import save_file
    groups = sw.plan_files(specs, max_file_bytes)
    weight_map = {}
    for name, group in zip(sw.file_names(len(groups)), groups):
        save_file({spec.name: produce(spec) for spec in group}, str(out_dir / name), metadata={"format": "pt"})
        weight_map.update({spec.name: name for spec in group})
    return weight_map

def write_with_hub(out_dir, specs, produce, max_file_bytes, on_tensor=None):
    from huggingface_hub import save_torch_state_dict
    state = {spec.name: produce(spec) for spec in specs}
    save_torch_state_dict(state, str(out_dir), max_shard_size=max_file_bytes, safe_serialization=True)
    return {}

if writer == "stream-no-release":
    PageReleaser.release = lambda self, tensor: None
elif writer == "safetensors":
    pipeline.write_weights = write_with_safetensors
elif writer == "hub":
    pipeline.write_weights = write_with_hub
sys.exit(main(argv))
"""


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
    parser.add_argument("--writers", nargs="+", choices=WRITERS, default=["stream"])
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
    print("| writer | dtype | verify | wall (s) | peak RSS (GiB) | peak anonymous RSS (GiB) |")
    print("|---|---|---|---|---|---|")
    for writer in args.writers:
        for dtype in args.dtypes:
            for verify in {"both": ("--no-verify", "--verify"), "on": ("--verify",), "off": ("--no-verify",)}[
                args.verify
            ]:
                out = workdir / f"hf_{dtype}"
                shutil.rmtree(out, ignore_errors=True)
                cli = ["convert", str(run_dir), "--out", str(out), "--dtype", dtype, verify, "--no-progress"]
                if writer == "stream":
                    cmd = [script, *cli]
                else:
                    cmd = [sys.executable, "-c", _ALTERNATIVE_WRITER, writer, *cli]
                result = measure(cmd)
                print(
                    f"| {writer} | {dtype} | {verify.lstrip('-')} | {result['wall_s']:.1f} | "
                    f"{result['rss_gib']:.2f} | {result['anon_gib']:.2f} |",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
