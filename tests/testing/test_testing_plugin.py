"""The pytest plugin's privileged markers: a privileged test that skips is
a failure when the suite runs as root (issue 9 defect 7: CI must not pass
with the TAP / AF_PACKET / namespace tests skipped), and a plain skip
otherwise."""
import os

import pytest

INNER = '''
import pytest

@pytest.mark.privileged
def test_needs_tun_and_root():
    pass

@pytest.mark.privileged(tun=False)
def test_skips_inside():
    pytest.skip("ping is not installed")

@pytest.mark.tools("graphnet-no-such-tool")
def test_needs_a_tool():
    pass

def test_plain_skip_stays_a_skip():
    pytest.skip("not privileged")
'''


def _run(pytester, monkeypatch, euid, tun):
    pytester.makeconftest('pytest_plugins = ["graphnet.testing.plugin"]')
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: tun if p == "/dev/net/tun" else real_exists(p))
    return pytester.runpytest("-rA", "-p", "no:cacheprovider")


def test_a_privileged_skip_under_root_is_a_failure(pytester, monkeypatch):
    r = _run(pytester, monkeypatch, euid=0, tun=False)
    r.assert_outcomes(failed=1, errors=2, skipped=1)     # a skip in setup fails as an error
    assert r.ret != 0
    out = r.stdout.str()
    assert "a privileged test was skipped while the suite runs as root" in out
    assert "/dev/net/tun" in out and "ping is not installed" in out and "graphnet-no-such-tool" in out


def test_without_root_privileged_tests_skip_with_the_reason(pytester, monkeypatch):
    r = _run(pytester, monkeypatch, euid=1000, tun=True)
    r.assert_outcomes(skipped=4)
    assert "needs root (CAP_NET_ADMIN)" in r.stdout.str()


def test_under_root_with_everything_present_privileged_tests_run(pytester, monkeypatch):
    r = _run(pytester, monkeypatch, euid=0, tun=True)
    r.assert_outcomes(passed=1, failed=1, errors=1, skipped=1)   # the inner skip(), the missing tool


NS_INNER = '''
import pytest
from graphnet.io import host

@pytest.mark.privileged(tun=False)
def test_marked(netns, netns2, quiet_netns, veth):
    names = {netns, netns2, quiet_netns, veth.ns_a, veth.ns_b}
    assert len(names) == 5 and names <= set(host.list_netns())
    assert host.link_exists(veth.veth_a, veth.ns_a) and host.link_exists(veth.veth_b, veth.ns_b)
    with open("names", "w") as f:              # in pytester's directory
        f.write(" ".join(sorted(names)))

def test_unmarked(netns):
    pass
'''


@pytest.mark.privileged(tun=False)
def test_namespace_fixtures_make_fresh_namespaces_and_need_the_marker(pytester):
    """netns, netns2, quiet_netns and veth: fresh, distinct, gone after the
    test; a test that uses one without the privileged marker is an error
    (so it cannot silently skip in CI or run unmarked)."""
    from graphnet.io import host
    pytester.makeconftest('pytest_plugins = ["graphnet.testing.plugin"]')
    pytester.makepyfile(test_ns=NS_INNER)
    r = pytester.runpytest_inprocess("-rA", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=1, errors=1)
    assert "the netns fixture needs @pytest.mark.privileged" in r.stdout.str()
    names = set((pytester.path / "names").read_text().split())
    assert len(names) == 5 and not names & set(host.list_netns())
