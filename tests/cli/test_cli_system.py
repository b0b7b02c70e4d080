"""show logging / threads / memory / clock, exec, and the vppctl aliases (graphnet.cli.system)."""
import logging
import re

import pytest

from graphnet.cli.registry import CommandError, execute
from graphnet.nodes import ip4_host


def test_show_logging_has_the_recent_lines(host_engine):
    logging.getLogger("graphnet.test-ring").warning("a line for show logging %d", 42)
    out = execute(host_engine, "show logging 5")
    assert out.splitlines()[-1].endswith("graphnet.test-ring: a line for show logging 42")
    with pytest.raises(CommandError, match="number from 1 to 100000"):
        execute(host_engine, "show logging lots")


def test_show_memory_counts_buffers_routes_and_rss(host_engine):
    out = execute(host_engine, "show memory")
    total = host_engine.pool.stats()["total"]
    assert f"buffer arena: {total} buffers" in out
    routes = int(re.search(r"ip4 fib: (\d+) routes", out).group(1))
    assert routes == len(ip4_host.fib(host_engine).routes()) > 0
    assert float(re.search(r"process RSS: ([\d.]+) MiB", out).group(1)) > 1


def test_show_ip_fib_summary_counts_by_length(host_engine):
    out = execute(host_engine, "show ip fib summary")
    routes = ip4_host.fib(host_engine).routes()
    n32 = sum(1 for p, _ in routes if p.endswith("/32"))
    assert re.search(rf"^/32\s+{n32}$", out, re.M), out
    assert re.search(rf"^total\s+{len(routes)}$", out, re.M), out


def test_aliases_give_the_same_text(host_engine):
    assert execute(host_engine, "show ip arp") == execute(host_engine, "show ip neighbors")
    assert execute(host_engine, "show hardware-interfaces") == execute(host_engine, "show hardware")
    assert re.search(r"if0\s+queue 0", execute(host_engine, "show interface rx-placement"))


def test_show_threads_and_clock(host_engine):
    host_engine.start()
    assert re.search(r"graphnet-main\s+main loop", execute(host_engine, "show threads"))
    assert re.search(r"main loop: \d+ iterations", execute(host_engine, "show clock"))


def test_set_engine_busy_poll(host_engine):
    assert execute(host_engine, "set engine busy-poll 120") == ""
    assert re.search(r"busy polls \(window 120 us\)", execute(host_engine, "show clock"))
    assert host_engine.main.loop_stats()["busy_poll_us"] == 120
    for bad in ("set engine busy-poll", "set engine busy-poll fast", "set engine busy-poll 200000"):
        with pytest.raises(Exception, match="busy-poll"):
            execute(host_engine, bad)
    assert host_engine.main.loop_stats()["busy_poll_us"] == 120


def test_exec_runs_a_file_and_names_the_failing_line(host_engine, tmp_path):
    f = tmp_path / "cmds.cli"
    f.write_text("# set up\nset interface ip address if0 10.0.1.1/24\n\nshow interface address\n")
    assert "10.0.1.1/24" in execute(host_engine, f"exec {f}")
    bad = tmp_path / "bad.cli"
    bad.write_text("show clock\nshow bogus\nset interface ip address if0 10.0.2.1/24\n")
    with pytest.raises(CommandError, match=r"bad.cli:2: show bogus: unknown command"):
        execute(host_engine, f"exec {bad}")
    assert "10.0.2.1" not in execute(host_engine, "show interface address")     # stopped at line 2
    loop = tmp_path / "loop.cli"
    loop.write_text(f"exec {loop}\n")
    with pytest.raises(CommandError, match="nested exec"):
        execute(host_engine, f"exec {loop}")
    with pytest.raises(CommandError, match="cannot read it"):
        execute(host_engine, f"exec {tmp_path / 'missing.cli'}")
