"""graphnet.io.host.veth_pair: the one veth-between-two-namespaces context
manager of benches and tests."""
import pytest

from graphnet.io import host


@pytest.mark.privileged(tun=False, tools=("ping",))
def test_veth_pair_joins_two_fresh_namespaces_and_removes_them():
    with host.veth_pair("gn-vtest", ("10.231.0.1/24", "10.231.0.2/24")) as p:
        assert {p.ns_a, p.ns_b} <= set(host.list_netns()) and p.ns_a != p.ns_b
        assert host.link_exists(p.veth_a, p.ns_a) and host.link_exists(p.veth_b, p.ns_b)
        assert (p.addr_a, p.addr_b) == ("10.231.0.1", "10.231.0.2")
        r = host.run_in_netns(p.ns_a, ["ping", "-c", "1", "-W", "2", p.addr_b], capture_output=True)
        assert r.returncode == 0
    assert not {p.ns_a, p.ns_b} & set(host.list_netns())


@pytest.mark.privileged(tun=False)
def test_veth_pair_removes_its_namespaces_on_error():
    with pytest.raises(RuntimeError, match="boom"):
        with host.veth_pair("gn-vtest") as p:
            assert p.addr_a is None
            raise RuntimeError("boom")
    assert not {p.ns_a, p.ns_b} & set(host.list_netns())
