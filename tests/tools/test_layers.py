"""Layering: vlib at the bottom, no upward import, config without cli, no
import cycle (python -m graphnet.tools.layers)."""
import subprocess
import sys

from graphnet.tools import layers


def test_the_tree_has_no_upward_import_and_no_cycle():
    assert layers.violations() == []
    r = subprocess.run([sys.executable, "-m", "graphnet.tools.layers"], capture_output=True, text=True)
    assert r.returncode == 0 and "no upward import, no cycle" in r.stdout


def _tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / "graphnet" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path / "graphnet"


def test_an_upward_import_fails(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "", "vlib/__init__.py": "", "nodes/__init__.py": "", "nodes/drop.pyx": "",
        "vlib/engine.py": "def f():\n    from graphnet.nodes import drop\n",       # inside a function, too
        "vlib/main.pyx": "from graphnet.nodes.drop cimport x\n",
    })
    found = layers.violations(root)
    assert "graphnet.vlib.engine (layer 1, vlib) imports graphnet.nodes.drop (layer 2, nodes): upward" in found
    assert "graphnet.vlib.main (layer 1, vlib) imports graphnet.nodes.drop (layer 2, nodes): upward" in found


def test_config_importing_cli_and_a_cycle_fail(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "", "cli/__init__.py": "",
        "config.py": "from graphnet.cli import templates\n", "cli/templates.py": "",
        "cli/commands.py": "from graphnet.cli.registry import command\n",
        "cli/registry.py": "def load():\n    import graphnet.cli.commands\n",
    })
    found = layers.violations(root)
    assert any("graphnet.config (layer 3, config) imports graphnet.cli.templates" in f for f in found)
    assert "import cycle: graphnet.cli.commands -> graphnet.cli.registry -> graphnet.cli.commands" in found
