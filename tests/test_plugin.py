"""Plugin registration: idempotent, in every process that imports verl, and loud when something breaks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import verl  # noqa: F401

from smartthinker_verl import plugin


def test_registering_twice_is_a_no_op():
    plugin.register_all()
    plugin.register_all()
    from verl.utils.tracking import FileLogger, Tracking

    for patched in (Tracking.log, FileLogger.__init__):  # wrapped once, not twice
        assert getattr(patched, "_smartthinker_patch", False)
        assert not getattr(patched.__wrapped__, "_smartthinker_patch", False)


def test_a_failing_registration_is_logged_at_error_and_raised(monkeypatch, caplog):
    monkeypatch.setattr(plugin, "REGISTRATION_MODULES", ("smartthinker_verl.no_such_module",))
    with caplog.at_level(logging.ERROR, logger="smartthinker_verl.plugin"), pytest.raises(ModuleNotFoundError):
        plugin.register_all()
    assert "failed to register smartthinker_verl.no_such_module" in caplog.text
    assert "make install" in caplog.text


def test_external_modules_route_registers_without_the_entry_point():
    """Nodes without the pip install: VERL_USE_EXTERNAL_MODULES=smartthinker_verl.plugin, entry points off."""
    env = dict(os.environ, VERL_USE_EXTERNAL_PLUGINS="none", VERL_USE_EXTERNAL_MODULES="smartthinker_verl.plugin")
    code = (
        "import verl\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
        "print('smartthinker' in ADV_ESTIMATOR_REGISTRY, 'smartthinker' in REWARD_MANAGER)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True True"


def test_entry_points_off_means_not_registered():
    """Sanity check of the test above: with both routes off, verl does not know the names."""
    env = dict(os.environ, VERL_USE_EXTERNAL_PLUGINS="none")
    env.pop("VERL_USE_EXTERNAL_MODULES", None)
    code = (
        "import verl\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        "print('smartthinker' in ADV_ESTIMATOR_REGISTRY)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


#: Folders of tools around the plugin core (README "Layout"): a training process imports none of them, except the
#: CPU platform where it is selected.
TOOL_PACKAGES = ("platforms", "launch", "data", "demo", "convert", "evaluation", "cli", "arena")


@pytest.mark.parametrize("platform", ["", "cpu"])
def test_the_cpu_path_is_imported_only_when_selected(platform):
    """A GPU process (no VERL_PLATFORM=cpu) registers everything but imports none of the tools: not the CPU path, the
    demo, the launch tooling, data, convert or evaluation. With VERL_PLATFORM=cpu it adds the CPU platform only."""
    env = dict(os.environ, VERL_PLATFORM=platform)
    prefixes = tuple(f"smartthinker_verl.{name}" for name in TOOL_PACKAGES)
    code = (
        "import sys, verl\n"
        "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({prefixes!r}))\n"
        "print('smartthinker' in ADV_ESTIMATOR_REGISTRY, ','.join(loaded) or '-')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    registered, loaded = out.stdout.strip().splitlines()[-1].split(" ")
    assert registered == "True"
    if platform == "cpu":
        modules = loaded.split(",")
        assert "smartthinker_verl.platforms.cpu.platform" in modules
        assert all(m.startswith("smartthinker_verl.platforms") for m in modules), modules
    else:
        assert loaded == "-"


def core_imports() -> dict[str, set[str]]:
    """``{core module: the package modules it imports}``, function-level imports included, from the sources."""
    import ast
    from pathlib import Path

    package = Path(plugin.__file__).parent
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        names[path] = ".".join(("smartthinker_verl", *parts)).removesuffix(".__init__")
    graph = {}
    for path, name in names.items():
        if name.split(".")[1:2] and name.split(".")[1] in TOOL_PACKAGES:
            continue
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smartthinker_verl"):
                for alias in node.names:  # `from package import module` imports that module
                    module = f"{node.module}.{alias.name}"
                    found.add(module if module in names.values() else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("smartthinker_verl")}
        graph[name] = found
    return graph


def test_the_core_imports_no_tool_and_forms_no_cycle():
    """The modules verl's processes load import no tool package, and their imports form no cycle."""
    graph = core_imports()
    tools = {m: sorted(i for i in imports if i.split(".")[1] in TOOL_PACKAGES) for m, imports in graph.items()}
    assert {m: t for m, t in tools.items() if t} == {}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    assert [m for m in graph if reaches(m, m, set())] == []
