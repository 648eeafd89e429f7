"""benchmarks/gpu_check.sh, the device check for a lent GPU, on CPU at tiny scale (`--smoke`): that it runs, and that
its scripts need only torch and transformers from this checkout (no install, no verl, vLLM, Ray or pandas)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("verl", "vllm", "ray", "pandas", "tensordict", "math_verify")


@pytest.mark.slow
def test_gpu_check_smoke_runs_both_checks_from_a_bare_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cpu vs cpu shaped rewards, 10 random batches: max abs difference 0.000e+00" in done.stdout
    assert "forward + backward:" in done.stdout and "estimate for this micro-batch" in done.stdout
    assert done.stdout.rstrip().endswith("== gpu_check: done")
    # Both scripts, run as gpu_check.sh runs them, import nothing heavy.
    probe = (
        "import runpy, sys\n"
        "for script in ('gpu_calibration_check.py', 'gpu_memory_check.py'):\n"
        f"    sys.argv = [script, '--smoke']; runpy.run_path('{REPO}/benchmarks/' + script, run_name='__main__')\n"
        f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env | {"PYTHONPATH": str(REPO)},
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "HEAVY []" in done.stdout
