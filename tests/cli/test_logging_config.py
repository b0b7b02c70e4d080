"""``[logging] file`` and ``level`` in the startup file (issue 10 item 7):
``graphnet run`` appends its log lines to the file at the level given, and
``show logging`` reads the same lines; a bad level or directory is a
startup-file error naming the key."""
import os
import subprocess
import sys

import pytest

from graphnet.config import ConfigError, loads


def run(tmp_path, toml):
    cfg = tmp_path / "g.toml"
    cfg.write_text(toml)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-m", "graphnet", "run", "-c", str(cfg), "--seconds", "0.3",
                           "--no-cli"], capture_output=True, text=True, timeout=60, env=env)


def test_logging_file_and_level(tmp_path):
    p = run(tmp_path, '[logging]\nfile = "gn.log"\nlevel = "info"\n')
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "gn.log").read_text()
    assert "INFO" in text and "graphnet.main: engine 'main' running" in text
    assert "INFO" not in p.stderr                        # stderr keeps --log-level (warning)
    assert oct((tmp_path / "gn.log").stat().st_mode & 0o777) == "0o640"


def test_logging_symlink_is_refused(tmp_path):
    (tmp_path / "gn.log").symlink_to(tmp_path / "elsewhere")
    p = run(tmp_path, '[logging]\nfile = "gn.log"\n')
    assert p.returncode != 0 and "[logging] file" in p.stderr
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("toml, message", [
    ('[logging]\nlevel = "loud"\n', "t.toml:2: logging.level"),
    ('[logging]\nfile = "/nonexistent-dir/x.log"\n', "no such directory"),
    ('[logging]\ncolour = true\n', "colour"),
])
def test_bad_logging_keys(toml, message):
    with pytest.raises(ConfigError, match=message):
        loads(toml, "t.toml")
