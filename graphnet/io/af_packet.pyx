"""AF_PACKET ("host") interfaces: ``AfPacketDevice`` attaches to an
existing kernel interface (a veth end, a real NIC) by name, as ``create
host-interface name <if>`` and the startup file's ``type = "af-packet"``
do, with the nodes ``af-packet-input-<name>`` / ``af-packet-output-<name>``.

    dev = AfPacketDevice(engine, "veth0", netns="blue")
    engine.add(dev)

The socket and its ring are af_packet_socket's, the nodes af_packet_input's
and af_packet_output's; this module ties them to an engine and follows the
kernel link through rtnetlink (graphnet.io.link_events), one log line per
event: down (marked link-down at once, neighbours flushed, tx backlog
dropped; the ring is kept), up (bound again, rx and tx resume), deleted /
moved / namespace deleted (detached: socket closed, ring unmapped, input
node disabled, ``show interface`` says deleted; attached again when an
interface of that name appears, or on ``create host-interface``),
renamed (still attached: the socket follows the ifindex). No timer, no
polling: a detached or down interface costs nothing. More for users:
docs/devices.md.
"""
import logging

from graphnet.vlib.node import Node
from graphnet.io.device import Device, DeviceError, RX_MODES
from graphnet.io.link_events import link_watcher
from graphnet.io.device import DefaultNext
from graphnet.io.af_packet_socket import AfpState
from graphnet.io.af_packet_input import AFP_INPUT_FN, INPUT_ERRORS
from graphnet.io.af_packet_output import AFP_OUTPUT_FN, OUTPUT_ERRORS
from graphnet.io import af_packet_input, af_packet_output

from graphnet.io.af_packet_socket cimport LINK_UP, LINK_DOWN, ETH_VLAN_FRAME_EXTRA

log = logging.getLogger("graphnet.af_packet")


from graphnet.vlib.main import STATE_POLLING, STATE_INTERRUPT
_STATE_CODES = {"polling": STATE_POLLING, "interrupt": STATE_INTERRUPT}


def attached_device(engine, host_if, netns):
    """The AF_PACKET device of engine on kernel interface host_if in netns
    (attached or detached), or None."""
    for dev in engine.interfaces.devices:
        if isinstance(dev, AfPacketDevice) and dev.host_if == host_if and dev.netns == netns:
            return dev
    return None


class AfPacketDevice(Device):
    """An AF_PACKET "host" interface on an existing kernel interface (see
    the module docstring).

    ``AfPacketDevice(engine, host_if="veth0", *, name=None ("host-<host_if>"),
    rx_mode="interrupt", promiscuous=True, ring_frames=4096,
    block_size=128 KiB, retire_ms=1, netns=None, next_node=None (ethernet-input
    if the graph has it, else null), mac=None, mtu=None (the kernel's),
    admin_up=True, qdisc_bypass=True, tx_backlog=512, tx_retry_limit=32)``.

    Raises DeviceError (clear text) when the interface or namespace does
    not exist or privileges are missing. Add it to the engine with
    ``engine.add(dev)``; it is created admin up (``admin_up=False``: down)."""
    kind = "af-packet"

    def __init__(self, engine, host_if: str = "veth0", *, name=None, rx_mode: str = "interrupt",
                 promiscuous: bool = True, ring_frames: int = 4096, block_size: int = 1 << 17, retire_ms: int = 1,
                 netns=None, next_node=None, mac=None, mtu=None, admin_up: bool = True,
                 qdisc_bypass: bool = True, tx_backlog: int = 512, tx_retry_limit: int = 32):
        self.host_if = host_if
        self.netns = netns
        self.next_node = next_node
        other = attached_device(engine, host_if, netns)
        if other is not None:
            raise DeviceError(f"af-packet: {host_if!r}"
                              + (f" in network namespace {netns!r}" if netns else "")
                              + f" is already attached as {other.name}")
        self._st = AfpState()
        self._st.open(host_if, netns, ring_frames, block_size, retire_ms, promiscuous, qdisc_bypass, tx_backlog,
                      tx_retry_limit)
        try:
            super().__init__(engine, name or f"host-{host_if}", mac=mac, mtu=mtu or self._st.kernel_mtu or 1500,
                             rx_mode=rx_mode)
        except BaseException:
            self._st.close()
            raise
        engine.interfaces.set_promiscuous(self.sw_if_index, bool(promiscuous))
        if admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)
        self._input_index = None
        self._watch = None
        self.link_state = "up"

    def nodes(self):
        state, adaptive = self.node_state()
        return (Node(self.input_node, type="input", state=state, adaptive=adaptive, fn=AFP_INPUT_FN,
                     next_nodes=(self.next_node,) if self.next_node else DefaultNext(self.engine),
                     errors=INPUT_ERRORS, setup=self._setup_input, instance=self,
                     trace_fn=af_packet_input.AFP_INPUT_TRACE_FN, trace_size=af_packet_input.AFP_INPUT_TRACE_SIZE,
                     format_trace=af_packet_input.format_afp_input_trace, doc=af_packet_input.__doc__),
                Node(self.output_node, fn=AFP_OUTPUT_FN, errors=OUTPUT_ERRORS, setup=self._setup_output,
                     trace_fn=af_packet_output.AFP_OUTPUT_TRACE_FN,
                     trace_size=af_packet_output.AFP_OUTPUT_TRACE_SIZE,
                     format_trace=af_packet_output.format_afp_output_trace,
                     attach_to=(("interface-output", self.sw_if_index),), instance=self,
                     doc=af_packet_output.__doc__))

    def _setup_input(self, engine, node_index):
        from graphnet.io.pcap import pcap_main_address
        self._input_index = node_index
        self._st.bind_engine(self, engine.interfaces.address(self.sw_if_index), pcap_main_address(engine),
                             self.sw_if_index, self.mtu + ETH_VLAN_FRAME_EXTRA, node_index)
        engine.main.set_runtime_data(node_index, self._st.capsule())
        engine.main.register_fd(node_index, self._st.fd)
        engine.main.set_interrupt_pending(node_index)
        self._watch = link_watcher(engine).watch(self.netns, self.host_if, self._on_link_event)
        self._sync_link()

    def _setup_output(self, engine, node_index):
        self._st.set_tx_error_base(engine.error_base[self.output_node])
        engine.main.set_runtime_data(node_index, self._st.capsule())

    # --- kernel link events (loop thread) -------------------------------------------

    @property
    def attached(self) -> bool:
        """True while a socket is bound to the kernel interface."""
        return self._st.fd >= 0

    def _sync_link(self):
        """Look at the kernel link now and take its state (at attach, and
        when netlink lost events)."""
        state, ifindex = self._st.probe()
        if state == "up":
            self._link_up()
        elif state == "down":
            self._link_down()
        link_watcher(self.engine).set_known(self._watch, ifindex, (state == "up") if ifindex else None)
        return state

    def _link_down(self):
        self._st.set_link(LINK_DOWN, self.engine.main.address)
        self.link_state = "down"
        self.kernel_link_changed(False)

    def _link_up(self):
        main = self.engine.main
        if not self._st.set_link(LINK_UP, main.address):
            return False
        self.link_state = "up"
        self.kernel_link_changed(True)
        main.rearm_fd(self._input_index)
        main.set_interrupt_pending(self._input_index)      # frames may wait in the ring
        return True

    def _on_link_event(self, ev):
        """A netlink event about our kernel interface: one log line each."""
        self._st.count_link_event()
        what, text = ev.what, ev.describe()
        if what == "down":
            if self.attached:
                self._link_down()
            log.warning("%s: %s: link down, neighbours flushed, traffic to it dropped (link-down)", self.name, text)
        elif what == "up":
            if not self.attached:
                self.attach()
            elif self._link_up():
                log.warning("%s: %s: link up, rx and tx resumed", self.name, text)
            else:
                log.error("%s: %s, but the socket cannot be bound to it again; link stays down", self.name, text)
        elif what in ("deleted", "moved", "namespace-deleted") and not self.attached:
            log.warning("%s: %s (detached already)", self.name, text)
        elif what in ("deleted", "moved", "namespace-deleted"):
            self.detach()
            log.error("%s: %s: detached (socket closed, ring unmapped); attached again when %s appears "
                      "or on 'create host-interface name %s'", self.name, text, self.host_if, self.host_if)
        elif what == "created":
            self.attach(text)
        elif what == "renamed":
            self.host_if = ev.ifname
            log.warning("%s: %s: still attached (the socket follows the ifindex)", self.name, text)
        elif what == "resync":
            log.warning("%s: %s: link %s", self.name, text, self._sync_link() if self.attached else "detached")

    def detach(self):
        """Let go of the kernel interface (it was deleted, moved away, or
        its namespace deleted): fd out of the loop, tx backlog dropped
        (link-down), ring unmapped, socket closed, neighbours flushed, the
        input node disabled. The interface stays, ``show interface`` says
        ``deleted``; attach() (or the interface coming back) binds again."""
        main = self.engine.main
        if not self.attached:
            return
        main.unregister_fd(self._input_index)
        self._st.detach(main.address)
        self.link_state = "deleted"
        self.kernel_link_changed(False)
        from graphnet.vlib.main import STATE_DISABLED
        main.set_state(self._input_index, STATE_DISABLED, False)

    def attach(self, why: str = "") -> bool:
        """Bind to the kernel interface again after detach(): a new socket
        and ring, the fd back in the loop, the rx mode restored. Logs one
        line; on failure (the interface is not there, not Ethernet...) the
        interface stays detached and the reason is logged and returned
        as a DeviceError by ``create host-interface``."""
        main = self.engine.main
        if self.attached:
            raise DeviceError(f"af-packet: {self.host_if!r} is already attached as {self.name}")
        try:
            self._st.reopen(self.host_if, self.netns)
        except DeviceError as e:
            log.error("%s: %s: cannot attach again: %s", self.name, why or "attach", e)
            raise
        main.register_fd(self._input_index, self._st.fd)
        state, adaptive = self.node_state()
        main.set_state(self._input_index, _STATE_CODES[state], adaptive)
        if self._watch is None:
            self._watch = link_watcher(self.engine).watch(self.netns, self.host_if, self._on_link_event)
        link = self._sync_link()
        n_blocks, block_size = self._st.ring
        log.warning("%s: %s: attached again (ifindex %d, ring %d x %d KiB re-mapped), link %s",
                    self.name, why or f"kernel interface {self.host_if}", self._st.ifindex, n_blocks,
                    block_size // 1024, link)
        return True

    def set_rx_mode(self, mode: str) -> None:
        if not self.attached:          # detached: the input node stays disabled until attach()
            if mode not in RX_MODES:
                raise DeviceError(f"rx-mode {mode!r}: use one of {', '.join(RX_MODES)}")
            self.rx_mode = mode
            return
        super().set_rx_mode(mode)

    def set_admin_up(self, up: bool) -> None:
        super().set_admin_up(up)

    def set_promiscuous(self, on: bool) -> None:
        """Promiscuous mode on the kernel interface (PACKET_MR_PROMISC) and
        in the interface table (ethernet-input then keeps unicast frames
        for other MACs)."""
        self.engine.call(self._set_promiscuous, bool(on))

    def _set_promiscuous(self, on):
        self._st.set_promisc(on)
        self.engine.interfaces.set_promiscuous(self.sw_if_index, on)

    def close(self) -> None:
        main = self.engine.main
        if self._watch is not None:
            link_watcher(self.engine).unwatch(self._watch)
            self._watch = None
        if main is not None and self._input_index is not None:
            try:
                main.unregister_fd(self._input_index)
            except Exception:
                pass
            self._st.free_backlog(main.address)
        self._st.close()

    def kernel_stats(self) -> dict:
        """The kernel's counters of this socket since it opened:
        frames it received and frames it dropped (ring full)."""
        self._st.update_kernel_stats()
        return {"packets": self._st.kernel_packets, "drops": self._st.kernel_drops}

    def hardware_info(self) -> dict:
        from graphnet.io.interface import format_mac
        n_blocks, block_size = self._st.ring
        ks = self.kernel_stats()
        flags = self._st.flags()
        link = self._st.link()
        if not self.attached:
            return {"host interface": f"{self.host_if}" + (f" (netns {self.netns})" if self.netns else ""),
                    "socket": "none: detached, the kernel interface was deleted (attached again when it "
                              "comes back, or with 'create host-interface')",
                    "kernel link": f"{link['state']} ({link['events']} changes)"}
        return {"host interface": f"{self.host_if} (ifindex {self._st.ifindex}"
                                  + (f", netns {self.netns}" if self.netns else "") + ")",
                "kernel MAC": format_mac(self._st.kernel_mac),
                "socket": f"fd {self._st.fd}, TPACKET_V3 rx ring {n_blocks} x {block_size // 1024} KiB, "
                          f"tx send(){' + PACKET_QDISC_BYPASS' if flags['qdisc_bypass'] else ''}"
                          f"{', promiscuous' if flags['promiscuous'] else ''}",
                "kernel link": f"{link['state']} ({link['events']} changes)",
                "kernel rx": f"{ks['packets']} frames, {ks['drops']} dropped (ring full)",
                "tx backlog": link["backlog"]}


