"""TAP interfaces: ``TapDevice`` (``create tap``, the startup file's
``[[interface]] type = "tap"``) and its nodes ``tap-input-<name>`` /
``tap-output-<name>`` and ``tap-monitor-<name>``.

A TAP is made through /dev/net/tun (tap_tun, tap_host), read by tap-input
(tap_input) and written by tap-output (tap_output); this module ties them
to an engine: creation, registration, the kernel side's link events, admin
state (the carrier follows it), ``show hardware``, close. How TAPs behave
for a user (queues, offloads, carrier, faults): docs/devices.md.

Losing the kernel side (deleted, moved, its namespace deleted, or a read,
write or epoll error) is handled once, by ``_lose`` here after the
monitor process or a netlink event: one log line, the fd closed, held
buffers freed, the input node disabled; ``show hardware`` says why.
Invariant: ``close()`` frees the spare stack and the retry queue (the
engine's leak check sees none); nothing writes to the TAP while the
interface is admin down.
"""
import errno as _errno
import logging
import os

from graphnet.io import host
from graphnet.io import tap_input, tap_output
from graphnet.io.device import DefaultNext, Device, DeviceError
from graphnet.io.link_events import link_watcher
from graphnet.io.tap_host import create_tap, remove_netns
from graphnet.io.tap_input import RX_ERRORS, format_tap_trace, parse_trace
from graphnet.io.tap_output import TX_ERRORS, format_tap_output_trace, parse_output_trace
from graphnet.io.tap_tun import (TapState, tap_open, tap_set_vnet_hdr_size, tap_set_offload, tap_features,
                                 offload_names, OFFLOAD_NAMES, OFFLOAD_CHOICES, GSO_OFFLOADS, VNET_HDR_SIZE,
                                 ADOPTED_OFFLOADS, tx_offload_flags)
from graphnet.vlib.node import Node
from graphnet.vlib.process import WaitEvent

from graphnet.io.tap_tun cimport DEAD_READ, DEAD_WRITE, DEAD_EPOLL, DEAD_CLOSED, DEAD_KERNEL, MAX_QUEUES, RETRY_CAP

log = logging.getLogger("graphnet.tap")


class TapDevice(Device):
    """A TAP interface (see the module docstring).

    ``TapDevice(engine, name="gn0", *, mac=None, mtu=1500, rx_mode="interrupt",
    host_address=None, netns=None, host_mac=None, host_name=None, vnet_hdr=True,
    offloads=True, queues=1, multi_queue=None, next_node=None, admin_up=True, fd=None)``

    mac is graphnet's side (the interface table); host_mac the kernel side's
    (None: the kernel's random one). host_name: the kernel side's name
    (None: ``name``; VPP's host-if-name), 1 to 15 bytes of letters, digits,
    ``-_.``. netns: move the kernel side into this
    namespace, created if missing (and then removed by close()).
    host_address ``a.b.c.d/len`` goes on the kernel side. queues: 1 to 16
    fds on the TAP (IFF_MULTI_QUEUE when more than one); multi_queue: set
    IFF_MULTI_QUEUE even with one queue (None: when queues > 1; False with
    queues > 1 is an error). admin_up=False creates it down, carrier off.
    fd: adopt an already configured TAP fd, or a list of them (one per
    queue), or any packet-preserving fd (e.g. a datagram socketpair in
    tests): nothing is created or configured in the kernel, vnet_hdr/offloads
    say how that fd was set up. Create devices before the engine is built,
    then ``engine.add(device)``; or later (in the loop's thread, as
    ``create tap`` does), then ``device.add_to_engine()``.

    Invariant: ``carrier`` is True/False once TUNSETCARRIER succeeded and
    then always equals the interface's admin state; None when the kernel
    (or an adopted non-TAP fd) refused it (``carrier_error`` says why).
    """
    kind = "tap"

    def __init__(self, engine, name: str = "gn0", *, mac=None, mtu: int = 1500, rx_mode: str = "interrupt",
                 host_address=None, netns=None, host_mac=None, host_name=None, vnet_hdr: bool = True,
                 offloads: bool = True, queues=None, multi_queue=None, next_node=None, admin_up: bool = True,
                 fd=None):
        if not 68 <= mtu <= 65535:
            raise DeviceError(f"TAP {name}: MTU {mtu} is outside 68..65535")
        if host_name is not None and fd is not None:
            raise DeviceError(f"TAP {name}: host_name names a TAP graphnet creates, not an adopted fd")
        err = host.ifname_error(name if host_name is None else host_name) if fd is None else None
        if err:
            raise DeviceError(f"TAP name {name!r}: {err}" if host_name is None else
                              f"TAP {name}: kernel-side name {host_name!r}: {err}")
        adopted = None if fd is None else ([int(f) for f in fd] if isinstance(fd, (list, tuple)) else [int(fd)])
        if queues is None:
            queues = len(adopted) if adopted else 1
        if isinstance(queues, bool) or not isinstance(queues, int) or not 1 <= queues <= MAX_QUEUES:
            raise DeviceError(f"TAP {name}: queues = {queues!r}: give 1 to {MAX_QUEUES}")
        if adopted is not None and len(adopted) != queues:
            raise DeviceError(f"TAP {name}: {len(adopted)} fd(s) adopted for {queues} queues")
        if multi_queue is False and queues > 1:
            raise DeviceError(f"TAP {name}: {queues} queues need IFF_MULTI_QUEUE (multi_queue=False given)")
        self.netns = netns
        self.host_name = name if host_name is None else host_name     # the kernel side's
        self.host_address = host_address
        self.host_mac = host_mac
        self.vnet_hdr = bool(vnet_hdr)
        self.queues = queues
        self.multi_queue = queues > 1 if multi_queue is None else bool(multi_queue)
        self.created_netns = False
        self.adopted_fd = fd is not None
        self.offloads = 0
        self.carrier = None
        self.carrier_error = None
        self._closed = False
        self._lost_reason = None
        self._watch = None
        self._fds = []
        self.state = TapState()
        if adopted is not None:
            for f in adopted:
                os.set_blocking(f, False)
            self._fds = adopted
            self.offloads = ADOPTED_OFFLOADS if (offloads and vnet_hdr) else 0
        else:
            self._create(self.host_name, mtu, offloads)
        self.fd = self._fds[0]
        try:
            self.state.configure(self._fds, VNET_HDR_SIZE if self.vnet_hdr else 0,
                                 bool(self.offloads & GSO_OFFLOADS), mtu)
            super().__init__(engine, name, mac=mac, mtu=mtu, rx_mode=rx_mode)
            engine.interfaces.set_tx_offloads(self.sw_if_index, tx_offload_flags(self.offloads, self.vnet_hdr))
        except BaseException:
            self._undo()
            raise
        self.monitor_node = f"tap-monitor-{name}"
        self.next_node = next_node
        if admin_up:
            engine.interfaces.set_admin_up(self.sw_if_index, True)     # carrier on (see admin_state_changed)
        else:
            self.admin_state_changed(False)                              # created down: carrier off

    # --- creation ---------------------------------------------------------------

    def _create(self, name, mtu, offloads):
        made = create_tap(name, mtu=mtu, queues=self.queues, multi_queue=self.multi_queue, vnet_hdr=self.vnet_hdr,
                          offloads=offloads, netns=self.netns, host_mac=self.host_mac,
                          host_address=self.host_address, open_queue=tap_open)
        self._fds, self.offloads, self.created_netns = made.fds, made.offloads, made.created_netns

    def _undo(self):
        """Undo a half-made device: close the fds (the kernel removes the
        link with the last one) and remove a namespace we created."""
        if self.state.fd >= 0:
            self.state.close_fd()
        else:
            for f in self._fds:
                os.close(f)
        self._fds = []
        self.fd = -1
        if self.created_netns:
            remove_netns(self.netns)
            self.created_netns = False

    # --- registration -----------------------------------------------------------

    def nodes(self):
        state, adaptive = self.node_state()
        nexts = (self.next_node,) if self.next_node else DefaultNext(self.engine)
        return (
            Node(self.input_node, type="input", state=state, adaptive=adaptive, fn=tap_input.TAP_INPUT_FN,
                 next_nodes=nexts, errors=RX_ERRORS, trace_fn=tap_input.TAP_INPUT_TRACE_FN,
                 trace_size=tap_input.TAP_TRACE_SIZE, format_trace=format_tap_trace,
                 setup=self._setup_input, instance=self, doc=tap_input.__doc__),
            Node(self.output_node, fn=tap_output.TAP_OUTPUT_FN, errors=TX_ERRORS,
                 trace_fn=tap_output.TAP_OUTPUT_TRACE_FN, trace_size=tap_output.TAP_OUTPUT_TRACE_SIZE,
                 format_trace=format_tap_output_trace,
                 attach_to=(("interface-output", self.sw_if_index),), setup=self._setup_output, instance=self,
                 doc=tap_output.__doc__),
            Node(self.monitor_node, type="process", process=self._monitor, instance=self,
                 doc="Logs the loss of the kernel side once and disables the input node."),
        )

    def _setup_input(self, engine, node_index):
        from graphnet.io.pcap import pcap_main_address
        self.state.attach(engine.interfaces.address(self.sw_if_index), self.sw_if_index, node_index,
                          engine.error_base[self.input_node], pcap_main_address(engine))
        engine.main.set_runtime_data(node_index, self.state.capsule())
        engine.main.register_fd(node_index, self.state.wait_fd)   # several queues: the device's epoll fd
        engine.main.set_interrupt_pending(node_index)     # frames may already be queued
        self.state.set_monitor(engine.index[self.monitor_node])
        if not self.adopted_fd:
            w = link_watcher(engine)
            self._watch = w.watch(self.netns, self.host_name, self._on_link_event)
            w.set_known(self._watch, host.link_index(self.host_name, self.netns) or 0, True)

    def _setup_output(self, engine, node_index):
        self.state.set_tx_error_base(engine.error_base[self.output_node])
        engine.main.set_runtime_data(node_index, self.state.capsule())

    def _monitor(self, engine):
        """Process: woken when a node finds the device dead (a read, a
        write or epoll failed); reports it once and lets go of the fd."""
        while not self._closed:
            yield WaitEvent(interrupts=True)
            if not self._closed and self.state.check_epoll_error(engine.main.address):
                self._lose(self.link_error())
                return

    def _on_link_event(self, ev):
        """A netlink event about the kernel side (loop thread). Its carrier
        is ours (it follows graphnet's admin state), so only its admin state
        counts as up or down; deleted, moved or its namespace deleted: the
        device is lost."""
        what, text = ev.what, ev.describe()
        if what in ("deleted", "moved", "namespace-deleted"):
            self._lose(text)
        elif what in ("up", "down"):
            up = what == "up" or ev.reason == "no carrier"
            if up != bool(self.engine.interfaces.info(self.sw_if_index)["link_up"]):
                self.kernel_link_changed(up)
                log.warning("TAP %s: %s: %s", self.name,
                            f"kernel side {self.host_name} is admin {'up' if up else 'down'}",
                            "link up, traffic resumed" if up else
                            "link down, neighbours flushed, traffic to it dropped (link-down)")
        else:
            log.warning("TAP %s: %s", self.name, text)

    def _lose(self, why):
        """The kernel side is gone: one log line, the interface down, the
        fd out of the loop and closed, held buffers freed, the input node
        disabled (so even a polling device costs nothing)."""
        if self._closed or self._lost_reason is not None:
            return
        eng = self.engine
        main = eng.main
        self._lost_reason = why
        self.state.mark_lost(main.address)            # no-op if a node found out first
        i = eng.index[self.input_node]
        main.unregister_fd(i)
        self.state.release(main.address)
        self.state.close_fd()
        self.fd = -1
        from graphnet.vlib.main import STATE_DISABLED
        main.set_state(i, STATE_DISABLED, False)
        if self._watch is not None:
            link_watcher(eng).unwatch(self._watch)
            self._watch = None
        self.kernel_link_changed(False)
        log.error("TAP %s: %s; interface %s is down, its fd closed", self.name, self.link_error(), self.name)

    # --- control ----------------------------------------------------------------

    def link_error(self):
        """None while the device works, else what happened (text)."""
        dead, err = self.state.dead, self.state.dead_errno
        if not dead:
            return None
        if dead == DEAD_CLOSED:
            return "closed"
        if dead == DEAD_KERNEL:
            return f"link lost: {self._lost_reason}"
        what = {DEAD_READ: "read", DEAD_WRITE: "write", DEAD_EPOLL: "epoll"}.get(dead, "?")
        if dead == DEAD_EPOLL:
            return "link lost: epoll reported an error on the TAP fd (the kernel side is gone)"
        return f"link lost: {what}: {_errno.errorcode.get(err, err)} ({os.strerror(err)})"

    @property
    def link_lost(self) -> bool:
        return self.state.dead not in (0, DEAD_CLOSED)

    def set_rx_mode(self, mode: str) -> None:
        if self.link_lost:
            from graphnet.io.device import RX_MODES
            if mode not in RX_MODES:
                raise DeviceError(f"rx-mode {mode!r}: use one of {', '.join(RX_MODES)}")
            self.rx_mode = mode       # the input node stays disabled
            return
        super().set_rx_mode(mode)

    def admin_state_changed(self, up: bool) -> None:
        """Called by the interface table after this interface's admin state
        was set (``set interface state``, ``set_admin_up``): the kernel
        side's carrier follows it (TUNSETCARRIER). graphnet's side changes
        first, so going down nothing more is written and coming up nothing
        the kernel sends is dropped as interface-down. A refusal is
        recorded (``carrier_error``, ``show hardware``) and logged once for
        a TAP graphnet created; it never fails the state change."""
        if self._closed or self.link_lost:
            return
        err = self.state.set_carrier(bool(up))
        if err == 0:
            self.carrier = bool(up)
            self.carrier_error = None
            return
        first = self.carrier_error is None
        self.carrier = None
        if err == _errno.ENOTTY:
            self.carrier_error = "not controlled: the fd is not a TAP (TUNSETCARRIER: ENOTTY)"
        else:
            self.carrier_error = (f"not controlled: TUNSETCARRIER: {_errno.errorcode.get(err, err)} "
                                  f"({os.strerror(err)}; needs Linux 5.0+)")
        if first and not self.adopted_fd:
            log.warning("TAP %s: carrier %s", self.name, self.carrier_error)

    def max_mtu(self) -> int:
        """Reads take 64 KB frames with GSO offloads; without them, the
        frame size the TAP was made for (its MTU at creation)."""
        return 65535 if self.offloads & GSO_OFFLOADS else self.mtu

    def kernel_mtu_changed(self, mtu: int) -> None:
        """The kernel side's MTU follows graphnet's."""
        host.set_link(self.host_name, self.netns, mtu=mtu)

    def cached_buffers(self) -> int:
        """The rx spare buffers (allocated ahead of reads, up to 128, not
        packets): ``show buffers``' device cache."""
        return self.state.stats()["spare_buffers"]

    def stats(self) -> dict:
        """Device statistics (reads, GSO frames, retry queue...)."""
        if self.engine.main is None:
            return self.state.stats()
        return self.engine.call(self.state.stats)

    def set_retry_timeout(self, seconds: float) -> None:
        """How long a full kernel queue may hold tx frames before they are dropped."""
        self.engine.call(self.state.set_retry_timeout, seconds)

    def hardware_info(self) -> dict:
        info = {}
        flags = ["IFF_TAP", "IFF_NO_PI"] + (["IFF_VNET_HDR"] if self.vnet_hdr else []) + \
                (["IFF_MULTI_QUEUE"] if self.multi_queue else [])
        fds = " ".join(str(f) for f in self.state.fds) or "-1"
        if self.adopted_fd:
            info["device"] = f"adopted fd{'s' if self.queues > 1 else ''} {fds}"
        else:
            info["device"] = f"/dev/net/tun fd{'s' if self.queues > 1 else ''} {fds}, {'|'.join(flags)}"
            info["kernel side"] = (f"{self.host_name}" + (f" in namespace {self.netns}" if self.netns else "")
                                   + (" (namespace created by graphnet)" if self.created_netns else "")
                                   + (f", address {self.host_address}" if self.host_address else ""))
        info["vnet header"] = f"{VNET_HDR_SIZE} bytes" if self.vnet_hdr else "none"
        info["offloads"] = " ".join(offload_names(self.offloads)) or "none"
        s = self.state.stats()
        if self.queues > 1:
            info["queues"] = (f"{self.queues} (IFF_MULTI_QUEUE), read round-robin through epoll fd "
                              f"{self.state.wait_fd}; rx frames per queue "
                              f"{' '.join(str(x) for x in s['rx_queue_frames'])}; tx on queue 0")
        else:
            info["queues"] = "1" + (" (IFF_MULTI_QUEUE)" if self.multi_queue else "")
        if self.carrier is not None:
            info["carrier"] = f"{'on' if self.carrier else 'off'} (follows the admin state)"
        elif self.carrier_error:
            info["carrier"] = self.carrier_error
        if s['buffers_per_read'] > 1:
            room = (f"1 buffer + spill or a {s['buffers_per_read']}-buffer chain per read (now: "
                    f"{'chain' if s['rx_chain_mode'] else 'spill'}; {s['rx_chain_reads']} chain reads, "
                    f"{s['rx_spill_copies']} spill copies)")
        else:
            room = "1 buffer per read"
        info["rx"] = (f"{room}, {s['rx_reads']} reads "
                      f"({s['rx_empty_reads']} empty), gso {s['rx_gso_frames']}, chained {s['rx_chained']}, "
                      f"csum-offload {s['rx_csum_offload']}, largest {s['rx_max_frame']} bytes")
        info["tx"] = (f"gso {s['tx_gso_frames']}, chained {s['tx_chained']}, eagain {s['tx_eagain']}, "
                      f"retry queue {s['tx_retry_queue']}/{RETRY_CAP} (max {s['tx_retry_max']})")
        err = self.link_error()
        if err:
            info["link"] = err
        return info

    def close(self) -> None:
        """Unregister and close the fds (the kernel removes the TAP), free the
        buffers the device holds, remove the namespace if we created it."""
        if self._closed:
            return
        self._closed = True
        eng = self.engine
        if self._watch is not None:
            link_watcher(eng).unwatch(self._watch)
            self._watch = None
        if eng.main is not None:
            def detach():
                i = eng.index.get(self.input_node)
                if i is not None:
                    eng.main.unregister_fd(i)
                self.state.release(eng.main.address)
            try:
                eng.call(detach)
            except Exception:
                log.exception("TAP %s: detaching from the engine", self.name)
        self.state.close_fd()
        self.fd = -1
        self._fds = []
        if self.created_netns:
            remove_netns(self.netns)
            self.created_netns = False
