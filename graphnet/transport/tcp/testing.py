"""Two TCP connections talking through a Python model of the session rx
fifo, for tests of the state machine without the graph: segments travel
as bytes (written by the C writers, parsed by the C parser) through a
`Net` that may reorder, drop or duplicate them, with the retransmission
timer simulated when the wire falls silent.

The glue here is what the tcp4-* nodes will do per action flag (see the
STATUS in graphnet/transport/tcp/__init__.py), in Python."""
from graphnet.transport.tcp import conn as tc
from graphnet.wire import tcp as wt


class Fifo:
    """The session fifo's rx behaviour: in-order bytes, out-of-order
    ranges joined as the gap fills; enqueue returns the tail's advance."""

    def __init__(self, size):
        self.size, self.data, self.ooo, self.read = size, bytearray(), {}, bytearray()

    def space(self):
        return self.size - len(self.data)

    def enqueue(self, offset, payload):
        assert offset + len(payload) <= self.space(), "the connection let in more than the fifo holds"
        if offset:
            for i, b in enumerate(payload):
                self.ooo[offset + i] = b
            return 0
        self.data += payload
        n = len(payload)
        shifted = {k - n: v for k, v in self.ooo.items() if k - n >= 0}
        k = 0
        while k in shifted:
            self.data.append(shifted.pop(k))
            k += 1
        self.ooo = {o - k: v for o, v in shifted.items()}
        return n + k

    def ranges(self):
        """Out-of-order (offset, length) ranges, ascending (as the fifo's
        ooo list gives them)."""
        out = []
        for o in sorted(self.ooo):
            if out and out[-1][0] + out[-1][1] == o:
                out[-1][1] += 1
            else:
                out.append([o, 1])
        return [tuple(r) for r in out]

    def app_read(self, n=None):
        n = len(self.data) if n is None else n
        self.read += self.data[:n]
        del self.data[:n]


class End:
    def __init__(self, name, lcl, rmt, iss, fifo_size, **kw):
        self.name = name
        self.c = tc.Connection(lcl=lcl, rmt=rmt, iss=iss, ts_offset=iss * 7, **kw)
        self.fifo = Fifo(fifo_size)
        self.tx = bytearray()
        self.events = []
        self.rtx_armed = False

    def received(self):
        return bytes(self.fifo.read) + bytes(self.fifo.data)


class Net:
    """Segments between two Ends. `mangle(batch)` may reorder, drop or
    duplicate a batch of (end, bytes); when the wire is empty and an end
    has its retransmission timer armed, the timer fires (after the tail
    loss probe's PTO or the RTO, as gn_tcp_rtx_timeout_ms says)."""

    def __init__(self, fifo_size=1 << 16, **kw):
        self.now = 1000
        self.a = End("a", (0x0A000001, 1000), (0x0A000002, 2000), 111, fifo_size, **kw)
        self.b = End("b", (0x0A000002, 2000), (0x0A000001, 1000), 999_999, fifo_size, **kw)
        self.wire = []                      # (to, bytes)
        self.mangle = None
        self.sacks = []
        self.n_sent = 0
        self.app_reads = False              # the apps read every byte as soon as it is in

    def peer(self, e):
        return self.b if e is self.a else self.a

    def act(self, e, act, payload=b""):
        acts = act["actions"]
        if "deliver" in acts:
            skip, n, off = act["rx"]
            got = e.fifo.enqueue(off, payload[skip:skip + n])
            if off == 0 and got > n:
                acts = acts | e.c.rcv_joined(got - n)["actions"]
            if self.app_reads:
                e.fifo.app_read()
        if "tx-acked" in acts:
            del e.tx[:act["tx_acked"]]
        if "rtx-arm" in acts:
            e.rtx_armed = True
        if "rtx-stop" in acts or "closed" in acts or "forget" in acts:
            e.rtx_armed = False
        e.events += [x for x in acts if x in ("established", "peer-fin", "reset", "refused", "closed",
                                              "time-wait", "forget")]
        if "send-syn" in acts:
            self.send(e, e.c.make_syn(self.now, e.fifo.space()))
        if "send-probe" in acts:
            self.send(e, e.c.make_probe(self.now, e.fifo.space()))
        if "send-rst" in acts:
            f = e.c.fields()
            self.send(e, tc.rst_bytes(act, f["lcl_port"], f["rmt_port"]))
        sent = self.push(e)
        if ("send-ack" in acts or "delack" in acts) and not sent:
            self.send(e, e.c.make_ack(self.now, e.fifo.space(), e.fifo.ranges()))

    def push(self, e):
        n = 0
        while (s := e.c.send_next(bytes(e.tx), self.now, e.fifo.space())) is not None:
            self.send(e, s)
            n += 1
        if e.c.timer_wanted():
            e.rtx_armed = True
        return n

    def send(self, e, raw):
        hlen = (raw[12] >> 4) * 4
        err, opts = wt.parse_options(raw[20:hlen])
        if opts.get("sack"):
            self.sacks.append(opts["sack"])
        self.n_sent += 1
        self.wire.append((self.peer(e), raw))

    def step(self):
        batch, self.wire = self.wire, []
        if self.mangle:
            batch = self.mangle(batch)
        for to, raw in batch:
            self.now += 1
            hlen = (raw[12] >> 4) * 4
            self.act(to, to.c.input(raw, self.now, to.fifo.space()), raw[hlen:])

    def run(self, limit=20000, timers=True, max_expiries=4):
        """Until the wire is empty and no timer is armed (or, without
        timers, the wire is empty), or after max_expiries rounds of timer
        expiries: time passes, and the caller lets its apps read."""
        expiries = 0
        for _ in range(limit):
            if self.wire:
                self.step()
                continue
            if expiries == max_expiries:
                return
            expiries += 1
            # a shut window waits for the app to read (the probes of the
            # persist timer would only repeat the same ACK meanwhile)
            armed = [e for e in (self.a, self.b) if e.rtx_armed and e.c.state != "CLOSED"
                     and (e.c.fields()["snd_wnd"] or e.c.state in ("SYN_SENT", "SYN_RCVD"))]
            if not timers or not armed:
                return
            for e in armed:
                self.now += e.c.rtx_timeout_ms()        # the PTO or the RTO, as the glue arms it
                self.act(e, e.c.rto_expired(self.now))
        raise AssertionError("no quiescence")

    def exchange(self, to_b, to_a=b"", rounds=1000):
        """Queue to_b at a and to_a at b, then run, the apps reading and
        telling their windows between runs, until both arrived (or the
        rounds are spent); the bytes each side received."""
        self.a.tx += to_b
        self.b.tx += to_a
        self.push(self.a)
        self.push(self.b)
        for _ in range(rounds):
            self.run()
            for e in (self.a, self.b):
                e.fifo.app_read()
                self.act(e, {"actions": {"send-ack"}})
            if self.b.received() == to_b and self.a.received() == to_a and not self.a.tx and not self.b.tx:
                break
        return self.b.received(), self.a.received()

    def connect(self):
        self.a.c.active_open(self.now)
        self.a.rtx_armed = True
        syn = self.a.c.make_syn(self.now, self.a.fifo.space())
        assert tc.listen_input(syn)["actions"] == {"accept-syn"}
        self.act(self.b, self.b.c.passive_open(syn, self.now))
        self.run()
        assert self.a.c.state == self.b.c.state == "ESTABLISHED"
