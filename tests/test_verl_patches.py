"""Every change to verl's or the standard library's behaviour sits in smartthinker_verl/verl_patches.py: the patches
it lists are installed where they should be, and no other module assigns an attribute of verl or the stdlib."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import verl  # noqa: F401  (loads the plugin, which installs the logging patches)

from smartthinker_verl import verl_patches

PACKAGE = Path(__file__).resolve().parents[1] / "smartthinker_verl"
#: The CPU platform (loaded only with VERL_PLATFORM=cpu) patches vLLM for CPU runs: tooling, not a training change.
ALLOWED = {PACKAGE / "verl_patches.py", *(PACKAGE / "platforms" / "cpu").rglob("*.py")}


def _foreign(module: str | None) -> bool:
    root = (module or "").split(".")[0]
    return root == "verl" or root in sys.stdlib_module_names


def patches_in(source: str) -> list[str]:
    """``line: target`` of every assignment to an attribute of a verl or standard-library name the source imports
    (``X.attr = ...``, ``X.a, X.b = ...``, ``setattr(X, ...)``)."""
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names if _foreign(a.name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _foreign(node.module):
            imported |= {a.asname or a.name for a in node.names}

    def root(node: ast.AST) -> str | None:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                targets += target.elts if isinstance(target, ast.Tuple) else [target]
            targets = [t for t in targets if isinstance(t, ast.Attribute)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            targets = node.args[:1]
        found += [f"{node.lineno}: {ast.unparse(t)}" for t in targets if root(t) in imported]
    return found


def test_the_scanner_finds_a_patch():
    source = "from verl.utils.tracking import Tracking\nfrom multiprocessing import spawn\nimport os\n"
    source += (
        "Tracking.log = print\nspawn.a, spawn.b = 1, 2\nsetattr(os, 'sep', '/')\nlocal = 1\nlocal.x = 2\nos: int = 1\n"
    )
    assert patches_in(source) == ["4: Tracking.log", "5: spawn.a", "5: spawn.b", "6: os"]


def test_no_module_but_verl_patches_changes_verl_or_the_standard_library():
    found = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED and (hits := patches_in(path.read_text()))
    }
    assert found == {}, f"move these into smartthinker_verl/verl_patches.py (PATCHES): {found}"


def test_the_listed_logging_patches_are_installed_once_the_plugin_is_loaded():
    from verl.utils.tracking import FileLogger, Tracking

    assert set(verl_patches.PATCHES) == {
        "verl.utils.tracking.Tracking.log",
        "verl.utils.tracking.FileLogger.__init__",
        "verl.utils.tracking.FileLogger.log",
        "multiprocessing.spawn.get_preparation_data",
    }
    for patched in (Tracking.log, FileLogger.__init__):
        assert getattr(patched, "_smartthinker_patch", False)
    assert FileLogger.log.__wrapped__ is not FileLogger.log


def test_the_spawn_patch_acts_only_in_a_process_that_starts_graders(tmp_path):
    """Importing the core leaves multiprocessing alone; once installed, only the named processes (pebble's workers)
    skip the parent's ``__main__``, which a script run as a file has."""
    script = tmp_path / "main.py"
    script.write_text(
        "from multiprocessing import spawn\n"
        "import verl, smartthinker_verl.grading_pool, smartthinker_verl.reward_manager\n"
        "print(hasattr(spawn.get_preparation_data, '_smartthinker_patch'))\n"
        "from smartthinker_verl.verl_patches import install_spawn_patch\n"
        "install_spawn_patch('worker')\n"
        "for name in ('worker', 'other'):\n"
        "    print('init_main_from_path' in spawn.get_preparation_data(name))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-3:] == ["False", "False", "True"]
