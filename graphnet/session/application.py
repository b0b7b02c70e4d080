"""Applications and app workers: the session layer's control plane.

An application is a name (stored once: a second attach with the same name
is refused), its options and a set of workers. Attaching makes worker 0; a
worker has its own message queue (or, for a builtin app, a callback that
gets the same events in batches), its sessions and its half-open connects.
Workers are added and removed; removing one closes (or, if its owner
vanished, resets) only its sessions and cleans up only its half-opens; the
app is freed with its last worker, and its segment with it.

Each app has segments (``segment_size`` bytes, at most ``max_segments``;
graphnet.session.segment_manager) that hold its workers' queues and its
sessions' fifos: the first made at attach, more added when one has no room
for a new session's fifos, an added one freed when its last fifo is gone.
Everything in them is addressed by offset, so an app in another process
maps them (graphnet.session.attach, graphnet.app).

    from graphnet.session.application import session_manager
    sm = session_manager(engine)
    app = sm.attach("echo", callback=on_events)      # or no callback: use app.workers[0].mq
    wrk = app.workers[0]
    wrk.listen("udp://0.0.0.0/1234")
"""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import weakref

from graphnet.vlib.per_engine import per_engine
from typing import Callable, Optional

from graphnet.session.msg_queue import MessageQueue
from graphnet.session.segment_manager import SegmentManager, SegmentLimitError
from graphnet.session.session import SessionLayer, SessionError, PROTOS, PROTO_NAMES, ip_int

SCOPES = ("global", "local", "both")


@dataclasses.dataclass
class AppOptions:
    """Attach options. Sizes in bytes; fifo sizes are rounded up to a power of two."""
    rx_fifo_size: int = 64 << 10
    tx_fifo_size: int = 64 << 10
    segment_size: int = 32 << 20
    scope: str = "global"           # global: reachable through transports; local: cut-through only
    mq_slots: int = 1024
    max_segments: int = 8           # segments of segment_size the app may have

    def check(self):
        for name in ("rx_fifo_size", "tx_fifo_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 64 <= v <= 1 << 30:
                raise ValueError(f"{name} {v!r}: use 64 bytes .. 1 GB")
        if not isinstance(self.segment_size, int) or not 1 << 16 <= self.segment_size <= (1 << 32) - 64:
            raise ValueError(f"segment_size {self.segment_size!r}: use 64 KB .. 4 GB")
        if self.scope not in SCOPES:
            raise ValueError(f"scope {self.scope!r}: use one of {', '.join(SCOPES)}")
        if not isinstance(self.mq_slots, int) or self.mq_slots < 4 or self.mq_slots & (self.mq_slots - 1):
            raise ValueError(f"mq_slots {self.mq_slots!r}: a power of two, at least 4")
        if not isinstance(self.max_segments, int) or not 1 <= self.max_segments <= 64:
            raise ValueError(f"max_segments {self.max_segments!r}: use 1..64")


def parse_uri(uri: str):
    """``proto://ip/port`` -> (proto number, ip int, port). ``udp://0.0.0.0/1234``."""
    try:
        proto, rest = uri.split("://", 1)
        ip, port = rest.rsplit("/", 1)
        ip_n = int(ipaddress.IPv4Address(ip))
        port_n = int(port)
    except ValueError:
        raise ValueError(f"URI {uri!r}: use proto://ipv4/port, e.g. udp://0.0.0.0/1234") from None
    if proto not in PROTOS:
        raise ValueError(f"URI {uri!r}: unknown protocol {proto!r} (known: {', '.join(PROTOS)})")
    if not 0 < port_n <= 0xffff:
        raise ValueError(f"URI {uri!r}: port {port_n} out of range 1..65535")
    return PROTOS[proto], ip_n, port_n


class AppWorker:
    """One worker of an app: its C worker index, queue, listeners, half-opens."""

    def __init__(self, app: "Application", number: int, index: int, mq: Optional[MessageQueue],
                 mq_segment: int = 0):
        self.app = app
        self.number = number            # 0 for the first worker of the app
        self.index = index              # the session layer's worker index
        self.mq = mq
        self.mq_segment = mq_segment    # the segment its queue lives in
        self.ctrl_mq: Optional[MessageQueue] = None   # app -> engine (apps in other processes)
        self.ctrl_segment = 0
        self.pid = None                 # its process (apps in other processes)
        self.listeners: dict[int, str] = {}   # listener handle -> uri

    @property
    def layer(self) -> SessionLayer:
        return self.app.manager.layer

    def listen(self, uri: str, scope: Optional[str] = None) -> int:
        """Listen on the URI (with the app's scope, or `scope`); the reply
        (BOUND) is delivered at once."""
        proto, ip, port = parse_uri(uri)
        try:
            h = self.layer.listen(self.index, self.app.index, proto, ip, port,
                                  SCOPES.index(scope or self.app.options.scope))
        except SessionError as e:
            self.layer.send_now(self.index, "bound", arg=-1)
            raise SessionError(f"app {self.app.name!r}: {e}") from None
        self.listeners[h] = uri
        self._transport_hook(proto, "claim_port", port)
        self.layer.send_now(self.index, "bound", handle=h)
        return h

    def _transport_hook(self, proto, name, *args):
        hook = getattr(self.app.manager.transports.get(proto), name, None)
        if hook is not None:
            hook(*args)

    def unlisten(self, handle: int) -> None:
        if handle not in self.listeners:
            raise SessionError(f"app {self.app.name!r} worker {self.number}: no listener {handle:#x}")
        proto, _, port = parse_uri(self.listeners[handle])
        if self.layer.unlisten(handle, self.index):
            self._transport_hook(proto, "release_port", port)
        del self.listeners[handle]
        self.layer.send_now(self.index, "unlisten-reply", arg=0)

    def connect(self, uri: str, opaque: int = 0, lcl_ip: int = 0) -> int:
        """Start a connect (from lcl_ip, host order; 0: the address of the
        interface the FIB routes the peer through, as the kernel picks
        it); the CONNECTED event follows. Returns the half-open handle."""
        proto, ip, port = parse_uri(uri)
        scope = SCOPES.index(self.app.options.scope)
        ct = scope != 0 and self.layer.lookup_local_listener(proto, ip, port) is not None
        if not ct and self.app.manager.transports.get(proto) is not None and proto == PROTOS["tcp"] \
                and ip >> 24 == 127:
            # loopback never leaves the engine: with no local listener the kernel's answer is a RST
            raise SessionError(f"tcp connect to {ipaddress.IPv4Address(ip)}:{port} refused: no local listener")
        if not lcl_ip and not ct:
            lcl_ip = self.app.manager.source_for(ip)
        return self.layer.connect(self.index, proto, ip, port, opaque, lcl_ip, 0, scope)

    def half_opens(self) -> list:
        return [h for h in self.layer.handles()
                if (s := self.layer.session(h)) and s["wrk"] == self.index and "half-open" in s["flags"]]

    def sessions(self) -> list:
        return [h for h in self.layer.handles()
                if (s := self.layer.session(h)) and s["wrk"] == self.index
                and not {"half-open", "listener"} & set(s["flags"])]

    def stats(self) -> dict:
        return self.layer.worker_stats(self.index)


class Application:
    """An attached application (see the module docstring)."""

    def __init__(self, manager: "SessionManager", index: int, name: str, options: AppOptions,
                 callback: Optional[Callable]):
        self.manager = manager
        self.index = index
        self.name = name
        self.options = options
        self.callback = callback
        self.segments = SegmentManager(manager.layer, name, options.segment_size, options.max_segments)
        self.segment_index = self.segments.first
        self.segment = self.segments.segment(self.segment_index)
        self.workers: dict[int, AppWorker] = {}          # number -> worker
        self._numbers = itertools.count()

    def add_worker(self, callback: Optional[Callable] = None) -> AppWorker:
        """A new worker (its own queue; a builtin app's callback, if given
        here or at attach, gets its events instead)."""
        cb = callback or self.callback
        number = next(self._numbers)
        mq_seg, mq = self.segments.alloc_mq(self.options.mq_slots, 64)
        try:
            idx = self.manager.layer.add_worker(self.index, number, self.segment_index, self.options.rx_fifo_size,
                                                self.options.tx_fifo_size, mq=mq, callback=cb)
        except BaseException:
            mq.free()
            raise
        w = self.workers[number] = AppWorker(self, number, idx, mq, mq_seg)
        if self.workers and self.current_segment != self.segment_index:
            self.manager.layer.set_worker_segment(idx, self.current_segment)
        return w

    @property
    def current_segment(self) -> int:
        """Where new sessions' fifos go (the segment manager moves it)."""
        for w in self.workers.values():
            return self.manager.layer.worker_stats(w.index)["segment"]
        return self.segment_index

    def collect_segments(self) -> list:
        """Free the added segments that hold nothing; workers that put new
        fifos there go back to the first segment."""
        cur = self.current_segment
        if cur != self.segment_index and not self.segments.segment(cur).stats()["used_blocks"]:
            for w in self.workers.values():
                self.manager.layer.set_worker_segment(w.index, self.segment_index)
        return self.segments.collect()

    def segment_full(self, need: int) -> bool:
        """The session layer found no room for `need` bytes of fifos in the
        current segment: move the app's workers to a segment with room."""
        try:
            idx = self.segments.with_room(need, exclude=self.current_segment)
        except SegmentLimitError:
            return False
        for w in self.workers.values():
            self.manager.layer.set_worker_segment(w.index, idx)
        return True

    def del_worker(self, number: int, vanished: bool = False) -> None:
        """Remove a worker: only its sessions go (reset if it vanished), its
        half-opens are cleaned up; its listeners pass to the app's other
        workers or close. The app goes with its last worker."""
        w = self.workers.pop(number, None)
        if w is None:
            raise SessionError(f"app {self.name!r} has no worker {number}")
        for h in list(w.listeners):
            w.unlisten(h)
        self.manager.layer.del_worker(w.index, reset=vanished)
        self.manager.layer.run_ctrl()
        for q in (w.mq, w.ctrl_mq):
            if q is not None:
                q.free()
        if not self.workers:
            self.manager._free_app(self)

    def detach(self) -> None:
        for number in list(self.workers):
            self.del_worker(number)

    def stats(self) -> dict:
        return {"name": self.name, "index": self.index, "workers": sorted(self.workers),
                "segment": self.segment.stats(), "segments": len(self.segments.segments),
                "scope": self.options.scope}


class SessionManager:
    """The session layer of one engine and its applications."""

    def __init__(self, engine=None, **layer_args):
        # weak: the manager lives in a WeakKeyDictionary keyed by the engine
        self._engine = weakref.ref(engine) if engine is not None else None
        self.layer = SessionLayer(**layer_args)
        from graphnet.transport.cut_through import CutThrough
        self.cut_through = CutThrough(self.layer)
        self.apps: dict[int, Application] = {}
        self.by_name: dict[str, int] = {}
        self._app_index = itertools.count()
        self.transports: dict = {}       # proto number -> transport object (kept alive)
        self._dead: list = []            # detached apps whose segments still hold fifos
        self.layer.set_segment_full_handler(self._segment_full)

    def _segment_full(self, app_index: int, wrk_index: int, need: int) -> bool:
        app = self.apps.get(app_index)
        return app is not None and app.segment_full(need)

    def source_for(self, dst: int) -> int:
        """The local address (host order) for talking to dst, as the kernel
        picks it: dst itself when it is one of ours (a local route), else
        the address of the interface the FIB's route to dst leaves by that
        suits dst best (graphnet.fib.ip4_address.source_for); 0 when the
        graph has no FIB, no route or no address."""
        engine = self._engine() if self._engine is not None else None
        if engine is None or "ip4-lookup" not in getattr(engine, "registrations", {}):
            return 0
        from graphnet.fib.ip4_address import ip4_addresses
        from graphnet.fib.ip4_fib import ip4_fib
        import ipaddress
        peer = str(ipaddress.IPv4Address(dst))
        route = ip4_fib(engine).lookup(peer)
        if route.get("type") == "local":
            return dst
        sw = route.get("sw_if_index")
        if sw is None:
            return 0
        src = ip4_addresses(engine).source_for(sw, peer)
        return int(ipaddress.IPv4Address(src)) if src else 0

    def attach(self, name: str, callback: Optional[Callable] = None, **options) -> Application:
        """Attach an app; worker 0 is made at once."""
        if not isinstance(name, str) or not name or len(name) > 64:
            raise ValueError(f"app name {name!r}: 1..64 characters")
        if name in self.by_name:
            raise SessionError(f"an app named {name!r} is already attached")
        opts = AppOptions(**options)
        opts.check()
        idx = next(self._app_index)
        app = Application(self, idx, name, opts, callback)
        self.apps[idx] = app
        self.by_name[name] = idx
        try:
            app.add_worker()
        except BaseException:
            self._free_app(app)
            raise
        return app

    def app(self, name: str) -> Application:
        try:
            return self.apps[self.by_name[name]]
        except KeyError:
            raise SessionError(f"no app named {name!r}") from None

    def _free_app(self, app: Application) -> None:
        self.apps.pop(app.index, None)
        self.by_name.pop(app.name, None)
        self._dead.append(app)
        self.collect()

    def collect(self) -> int:
        """Free the segments of detached apps whose last session is gone
        (sessions still closing hold their fifos), and the added segments
        of live apps that hold nothing; returns how many dead apps remain."""
        live = {s["segment"] for h in self.layer.handles() if (s := self.layer.session(h))}
        for app in list(self._dead):
            if not live & set(app.segments.segments):
                app.segments.close()
                self._dead.remove(app)
        for app in self.apps.values():
            app.collect_segments()
        return len(self._dead)

    @property
    def engine(self):
        return self._engine() if self._engine is not None else None

    def close(self) -> None:
        """Detach every app and free the segments (the engine is closing)."""
        for app in list(self.apps.values()) + self._dead:
            for w in app.workers.values():
                for q in (w.mq, w.ctrl_mq):
                    if q is not None:
                        q.close()
            app.segments.close()
        self.apps.clear()
        self.by_name.clear()
        self._dead.clear()


_MANAGERS: "weakref.WeakKeyDictionary" = per_engine()     # dropped by Engine.close()


def session_manager(engine, **layer_args) -> SessionManager:
    """The engine's session manager (made on first use)."""
    m = _MANAGERS.get(engine)
    if m is None:
        m = _MANAGERS[engine] = SessionManager(engine, **layer_args)
    return m
