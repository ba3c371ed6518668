"""The import-cycle check of ``make lint`` finds cycles, including through function-level
imports and package ``__init__`` files, and the project has none."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_import_cycles", Path(__file__).with_name("check_import_cycles.py"))
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_function_level_cycle_through_a_package_init_is_found(tmp_path, capsys):
    root = _package(tmp_path, {
        "a.py": "from pkg.sub.leaf import x\n",
        "sub/__init__.py": "from pkg.sub.impl import y\n",
        "sub/impl.py": "def f():\n    from pkg import a\n",
        "sub/leaf.py": "x = 1\n",
    })
    assert check.main(["check", str(root)]) == 1
    err = capsys.readouterr().err
    assert "import cycle: pkg.a (line 1) -> pkg.sub (line 1) -> pkg.sub.impl (line 2) -> pkg.a" in err


def test_submodules_of_the_importing_package_and_type_checking_imports_are_no_cycle(tmp_path):
    root = _package(tmp_path, {
        "sub/__init__.py": "from pkg.sub.impl import y\nfrom .leaf import x\n",
        "sub/impl.py": "from typing import TYPE_CHECKING\nfrom pkg.sub.leaf import x\n"
                       "if TYPE_CHECKING:\n    from pkg.sub import y\n",
        "sub/leaf.py": "x = 1\n",
    })
    assert check.cycles(check.build_graph(root)) == []


def test_relance_has_no_import_cycle():
    graph = check.build_graph(ROOT / "plugins" / "relance")
    assert "relance.keys" in graph and graph["relance.keys"] == {}
    assert check.cycles(graph) == []
