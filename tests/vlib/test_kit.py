"""The node kit: checked declarations, engine-made state, the shared trace
record, and the new_node scaffold (built and tested in a temp dir)."""
import enum
import os
import subprocess
import sys
from pathlib import Path

import pytest

import graphnet
from graphnet import GraphError
from graphnet.vlib import kit
from graphnet.tools import new_node

PY = sys.executable
ROOT = Path(graphnet.__file__).parent


def _enums(next_names, error_names):
    return (enum.IntEnum("Next", [(n, i) for i, n in enumerate(next_names)]),
            enum.IntEnum("Error", [(n, i) for i, n in enumerate(error_names)]))


ERRORS = (("none", "info", "no error"), ("too-short", "error", "short"), ("bad-sum", "warn", "checksum"))
NEXTS = (("lookup", "ip4-lookup"), ("drop", "error-drop"))


def test_matching_enums_make_a_node():
    Next, Error = _enums(["NEXT_LOOKUP", "NEXT_DROP", "N_NEXT"],
                         ["ERROR_NONE", "ERROR_TOO_SHORT", "ERROR_BAD_SUM", "N_ERROR"])
    n = kit.node("x", None, nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error, doc="x: a node.\n\nMore.")
    assert n.next_nodes == ("ip4-lookup", "error-drop")
    assert n.error_table()[1][0] == "too-short"
    assert n.kit and n.doc == "x: a node."


@pytest.mark.parametrize("errors, message", [
    (["ERROR_NONE", "ERROR_BAD_SUM", "ERROR_TOO_SHORT", "N_ERROR"],      # swapped rows
     "the table says ERROR_TOO_SHORT, the enum has ERROR_BAD_SUM"),
    (["ERROR_NONE", "ERROR_TOO_SHORT", "N_ERROR"],                       # a row without its member
     "the table says ERROR_BAD_SUM, the enum has N_ERROR"),
    (["ERROR_NONE", "ERROR_TOO_SHORT", "ERROR_BAD_SUM", "ERROR_EXTRA", "N_ERROR"],
     "the table says N_ERROR, the enum has ERROR_EXTRA"),
    (["ERROR_NONE", "ERROR_TOO_SHORT", "ERROR_BAD_SUM"],                 # no sentinel
     "the table says N_ERROR, the enum has \\(nothing\\)"),
])
def test_an_error_enum_out_of_step_with_its_table_fails(errors, message):
    Next, Error = _enums(["NEXT_LOOKUP", "NEXT_DROP", "N_NEXT"], errors)
    with pytest.raises(GraphError, match=message):
        kit.node("x", None, nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error)


def test_a_next_enum_out_of_step_fails():
    Next, Error = _enums(["NEXT_DROP", "NEXT_LOOKUP", "N_NEXT"],
                         ["ERROR_NONE", "ERROR_TOO_SHORT", "ERROR_BAD_SUM", "N_ERROR"])
    with pytest.raises(GraphError, match="node 'x': Next does not match its table at position 0"):
        kit.node("x", None, nexts=NEXTS, Next=Next, errors=ERRORS, Error=Error)


def test_tables_without_enums_and_bad_rows_fail():
    with pytest.raises(GraphError, match="error rows given without their Error enum"):
        kit.node("x", None, errors=ERRORS)
    with pytest.raises(GraphError, match="next rows given without their Next enum"):
        kit.node("x", None, nexts=NEXTS)
    with pytest.raises(GraphError, match="severity 'fatal'"):
        kit.node("x", None, errors=[("oops", "fatal", "bad")])


def test_engine_allocates_zeroed_node_data(engine_factory):
    from graphnet.nodes.passthrough import passthrough
    import dataclasses
    n = dataclasses.replace(passthrough("p", "null"), data_size=4096)
    e = engine_factory([n]).build()
    d = e.node_data["p"]
    assert d.size == 4096
    assert e.main.runtime_data_address(e.node_index("p")) == d.address


def test_shared_trace_record_format():
    fmt = kit.trace_bytes(4, None, "tx")["format_trace"]
    rec = (7).to_bytes(4, "little") + (3).to_bytes(2, "little") + b"\x01\x02\x03"
    assert fmt(rec) == "  tx sw_if_index 7\n  0000: 01 02 03"      # no formatter: a hex dump
    rec = (0xffffffff).to_bytes(4, "little") + (0).to_bytes(2, "little")
    assert fmt(rec) == "  tx sw_if_index -"


def _build(workdir: Path, modules):
    """Build .pyx modules in workdir in place (as `make build` does)."""
    script = (
        "import sys\n"
        "from Cython.Build import cythonize\n"
        "from setuptools import Extension, setup\n"
        f"exts = [Extension(m, [m + '.pyx'], include_dirs=[{str(ROOT / 'includes')!r}]) for m in {modules!r}]\n"
        "setup(ext_modules=cythonize(exts, compiler_directives={'language_level': 3}, quiet=True),\n"
        "      script_args=['build_ext', '--inplace', '-q'])\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([PY, "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return env


def test_new_node_scaffold_builds_and_its_test_passes(tmp_path):
    pkg, tests = tmp_path / "src", tmp_path / "tests"
    assert new_node.main(["my-counter", "--dir", str(pkg), "--tests", str(tests), "--package", ""]) == 0
    src = (pkg / "my_counter.pyx").read_text()
    assert 'node_for("my-counter", "null")' in src and "FEATURE = None" in src
    # a deliberately broken copy: the enum names a row the table does not have
    (pkg / "my_broken.pyx").write_text(src.replace("ERROR_EMPTY", "ERROR_EMPTI"))
    env = _build(pkg, ["my_counter", "my_broken"])
    env["PYTHONPATH"] = os.pathsep.join([str(pkg), env["PYTHONPATH"]])
    r = subprocess.run([PY, "-m", "pytest", "-q", "-p", "graphnet.testing.plugin", "-c", os.devnull,
                        "--rootdir", str(tmp_path), str(tests / "test_my_counter.py")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([PY, "-c", "import my_broken"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert ("GraphError: node 'my-counter': Error does not match its table at position 1: "
            "the table says ERROR_EMPTY, the enum has ERROR_EMPTI") in r.stderr


def test_new_node_refuses_bad_names_and_existing_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        new_node.main(["My_Node", "--dir", str(tmp_path), "--tests", str(tmp_path)])
    assert "lower case" in capsys.readouterr().err
    new_node.main(["a-b", "--dir", str(tmp_path), "--tests", str(tmp_path)])
    with pytest.raises(SystemExit, match="exists; not overwriting"):
        new_node.main(["a-b", "--dir", str(tmp_path), "--tests", str(tmp_path)])


def test_passthrough_template_is_short():
    assert len((ROOT / "nodes" / "passthrough.pyx").read_text().splitlines()) < 40
