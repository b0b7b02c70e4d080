"""Run the fuzz families through the IPv4 host and router graph, batch by
batch, and check the engine after every batch.

The graph is the one ``graphnet run`` builds with addresses and routes,
in memory: ``fuzz-input`` (graphnet.fuzz.gen) -> ethernet-input -> the
whole of graphnet.nodes.ip4_host, with two interfaces whose transmit side
is a capture (no TAP):

  if0  02:00:00:00:00:01  10.10.0.2/16  MTU 1500  frames arrive here (mostly)
  if1  02:00:00:00:00:02  10.20.0.1/24  MTU 576   (forwarded packets are fragmented)
  if2  02:00:00:00:00:03  10.60.0.1/24  admin down
  10.10.0.1  static neighbour on if0 (the "peer")
  10.20.0.9  static neighbour on if1, 10.60.0.9 on if2
  10.30.0.0/16 via 10.20.0.9 (resolved)    10.40.0.0/16 via 10.20.0.77 (resolved
  only when a generator sends its ARP reply)    10.50.0.0/16 drop
  10.70.0.0/16 via 10.60.0.9 (interface down)

(if0's /16 gives 65,534 on-link hosts: spoofed ARP can fill the
neighbour table)

so that every node family is reached: ethernet-input, arp-input,
ip4-input, ip4-lookup, ip4-rewrite, ip4-frag, ip4-arp, ip4-local,
ip4-icmp-input, udp4-input, udp4-echo, ip4-reassembly, ip4-icmp-error.

The checks after every batch (run until idle):

- every frame found a buffer: a pool emptied by what nodes hold is a
  ``no-buffers`` failure (issue 9's bounded queues); the run then waits
  for the holders' timeouts and goes on, so every frame is still sent;
- nothing crashed (each family runs in a child process; a signal, a hang
  -- no batch done for ``hang_seconds`` -- or runaway memory is reported
  with the seed and batch that reproduce it);
- no frame pending, no double free;
- buffers: in use == buffers held (ARP queues, chains counted whole, +
  reassembly, whose fragments are one buffer each: see gen.pyx), exactly;
- every drop is named: error-drop's own ``none`` and ``bad-next`` rows and
  every node's ``none`` row stay 0 (error-drop counts each packet under the
  row its node set);
- the packet ledger balances (below);
- a sample of what went out (the first 512 packets per interface per batch)
  is well formed: our source MAC; IPv4 version, header checksum and
  length, within the interface's MTU, TTL not 0; ARP from our MAC; and for what graphnet itself originated (from
  one of our addresses with TTL 64: echo replies, ICMP errors) the ICMP
  and UDP checksums. Forwarded packets keep their L4 checksums as they
  came (a router does not check them).

The ledger, in packets (a buffer chain is one packet), over one batch:

    injected + created == out + dropped + consumed + (held_after - held_before)

  injected  frames fuzz-input emitted (its vectors);
  out       packets the interfaces' captures took (forwarded or answered:
            echo replies, ARP replies and ICMP errors are the received
            packet turned round, one for one);
  dropped   packets error-drop freed (its vectors), each under a named row;
  created   packets made by nodes: ARP requests (ip4-arp requests-sent,
            ip4-neighbor requests-sent and probes-sent) and fragments
            (ip4-frag fragments);
  consumed  packets freed without error-drop: a fragmented original
            (ip4-frag fragmented), the fragments merged into a reassembled
            datagram beyond the one that carries it (fragments_reassembled
            - reassembled), ARP-queued packets freed when their neighbour
            entry was deleted (ip4-neighbor deleted; those whose neighbour
            never answered go through error-drop as resolution-failed);
  held      packets in ARP queues and reassembly contexts.

A failure is a dict: family, seed, batch (the first that had it), kind,
detail, batches (how many had it) and ``reproduce``, the command that
replays the run up to that batch: the same frames in the same order (the
engine's timers and rate limits follow the clock, so counts may differ by
a few).
"""
from __future__ import annotations

import ipaddress
import json
import os
import select
import signal
import struct
import time
from typing import Optional

from graphnet.fuzz.gen import FAMILIES, FuzzInput
from graphnet.wire.inet import inet_sum

ADDRESSES = ("10.10.0.2/16", "10.20.0.1/24", "10.60.0.1/24")
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03")
MTUS = (1500, 576, 1500)
UP = (True, True, False)
PEER, PEER_MAC = "10.10.0.1", "02:00:00:00:aa:01"
IF1_NEIGHBOR, IF1_NEIGHBOR_MAC = "10.20.0.9", "02:00:00:00:bb:09"
IF2_NEIGHBOR, IF2_NEIGHBOR_MAC = "10.60.0.9", "02:00:00:00:cc:09"
PENDING = "10.20.0.77"
ROUTED, GLEAN, BLACKHOLE, DOWN = "10.30.0.0/16", "10.40.0.0/16", "10.50.0.0/16", "10.70.0.0/16"
SAMPLE = 512                     # captured packets kept (and checked) per interface per batch
DEFAULT_BATCH = 10000
MAX_FAILURES = 20                # per family: stop after this many

# Rows of the ledger (node, symbol).
CREATED = (("ip4-arp", "requests-sent"), ("ip4-neighbor", "requests-sent"), ("ip4-neighbor", "probes-sent"),
           ("ip4-frag", "fragments"))
CONSUMED = (("ip4-frag", "fragmented"), ("ip4-neighbor", "deleted"))

# Nodes each family must reach (tests check them; the report lists them).
EXPECTED = {
    "ethernet": ("ethernet-input", "arp-input", "ip4-input", "ip4-icmp-input"),
    "arp": ("ethernet-input", "arp-input"),
    "ip4": ("ip4-input", "ip4-lookup", "ip4-rewrite", "ip4-frag", "ip4-arp", "ip4-local", "ip4-icmp-error",
            "udp4-input", "ip4-icmp-input"),
    "icmp": ("ip4-local", "ip4-icmp-input", "ip4-icmp-error", "ip4-rewrite"),
    "udp": ("udp4-input", "udp4-echo", "ip4-icmp-error", "ip4-rewrite"),
    "frag": ("ip4-reassembly", "udp4-input", "ip4-icmp-input", "ip4-rewrite"),
}


def _ip(a: str) -> int:
    return int(ipaddress.IPv4Address(a))


class FuzzGraph:
    """The engine, its two capture interfaces and the fuzz input node."""

    def __init__(self, family: str, seed: int, *, buffers: int = 16384, loop_guard: bool = True,
                 reassembly_timeout: Optional[float] = None):
        from graphnet import Engine
        from graphnet.nodes import ip4_host
        from graphnet.testing.ip4 import CaptureInterface
        nets = [ipaddress.IPv4Interface(a) for a in ADDRESSES]
        self.engine = Engine(buffers=buffers, name=f"fuzz-{family}")
        self.ifs = [CaptureInterface(self.engine, f"if{i}", MACS[i], mtu=MTUS[i], up=UP[i], limit=SAMPLE)
                    for i in range(len(ADDRESSES))]
        nets = nets[:2]                                     # frames arrive on if0 and if1
        env = {"addr": [int(n.ip) for n in nets], "bcast": [int(n.network.broadcast_address) for n in nets],
               "mask": [int(n.netmask) for n in nets], "down": _ip(DOWN.split("/")[0]), "pending": _ip(PENDING),
               "mac": [bytes.fromhex(m.replace(":", "")) for m in MACS],
               "sw_if_index": [i.sw_if_index for i in self.ifs],
               "peer": _ip(PEER), "routed": _ip(ROUTED.split("/")[0]), "glean": _ip(GLEAN.split("/")[0]),
               "blackhole": _ip(BLACKHOLE.split("/")[0])}
        self.input = FuzzInput(family, seed, env, loop_guard=loop_guard)
        self.engine.add([self.input, ip4_host.NODES, *self.ifs])
        self.engine.build()
        for i, a in enumerate(ADDRESSES):
            ip4_host.set_interface_address(self.engine, f"if{i}", a)
        self.neighbors = ip4_host.ip4_neighbors(self.engine)
        self.neighbors.add("if0", PEER, PEER_MAC, static=True)
        self.neighbors.add("if1", IF1_NEIGHBOR, IF1_NEIGHBOR_MAC, static=True)
        self.neighbors.add("if2", IF2_NEIGHBOR, IF2_NEIGHBOR_MAC, static=True)
        fib = ip4_host.fib(self.engine)
        fib.add_route(ROUTED, sw_if_index="if1", next_hop=IF1_NEIGHBOR)
        fib.add_route(GLEAN, sw_if_index="if1", next_hop=PENDING)
        fib.add_route(BLACKHOLE, drop=True)
        fib.add_route(DOWN, sw_if_index="if2", next_hop=IF2_NEIGHBOR)
        from graphnet.nodes.ip4_reassembly import reassembly
        self.reassembly = reassembly(self.engine)
        if reassembly_timeout is not None:
            self.reassembly.configure(timeout=reassembly_timeout)
        self.names = [n.name for n in self.engine.nodes]
        self._rows = {(node, sym): i for i, (node, sym, _sev, _desc) in enumerate(self.engine.errors)}

    def close(self):
        self.engine.close()

    # --- snapshots ----------------------------------------------------------------

    def snapshot(self) -> dict:
        counters = self.engine.main.node_counters()
        errors = self.engine.main.error_counters()
        reass = self.reassembly.stats()
        return {"vectors": {n: c["vectors"] for n, c in zip(self.names, counters)},
                "errors": errors,
                "held": self.neighbors.stats()["queued"] + reass["buffers_held"],
                "held_buffers": (self.neighbors.queued_buffers()
                                 + reass["buffers_held"]),
                "merged": reass["fragments_reassembled"]}

    def row(self, snap: dict, node: str, symbol: str) -> int:
        i = self._rows.get((node, symbol))
        return 0 if i is None else snap["errors"][i]


def ledger(g: FuzzGraph, a: dict, b: dict) -> dict:
    """The packet ledger between snapshots a and b (module docstring)."""
    dv = {n: b["vectors"][n] - a["vectors"][n] for n in b["vectors"]}

    def d(node, sym):
        return g.row(b, node, sym) - g.row(a, node, sym)

    out = sum(v for n, v in dv.items() if n.startswith("capture-tx-"))
    created = sum(d(*r) for r in CREATED)
    consumed = (sum(d(*r) for r in CONSUMED)
                + (b["merged"] - a["merged"]) - d("ip4-reassembly", "reassembled"))
    led = {"injected": dv[g.input.name], "created": created, "out": out, "dropped": dv["error-drop"],
           "consumed": consumed, "held": b["held"] - a["held"]}
    led["balance"] = led["injected"] + created - (out + led["dropped"] + consumed + led["held"])
    return led


# --- what goes out -------------------------------------------------------------------

OURS = tuple(ipaddress.IPv4Interface(a).ip.packed for a in ADDRESSES)


def check_output(frame: bytes, mac: bytes, mtu: int = 1500) -> Optional[str]:
    """Why a frame graphnet sent on an interface (MAC, MTU) is malformed, or None."""
    if len(frame) < 14:
        return f"{len(frame)}-byte frame"
    if frame[6:12] != mac:
        return f"source MAC {frame[6:12].hex(':')} is not the interface's"
    etype = struct.unpack_from("!H", frame, 12)[0]
    body = frame[14:]
    if etype == 0x0806:
        if len(body) < 28 or body[8:14] != mac or struct.unpack_from("!H", body, 6)[0] not in (1, 2):
            return f"bad ARP {body[:28].hex()}"
        return None
    if etype != 0x0800:
        return f"ethertype {etype:#06x}"
    if len(body) < 20 or body[0] >> 4 != 4:
        return "not IPv4"
    hlen = (body[0] & 15) * 4
    total = struct.unpack_from("!H", body, 2)[0]
    if hlen < 20 or total < hlen or total > len(body):
        return f"IPv4 lengths: header {hlen}, total {total}, {len(body)} bytes"
    if total > mtu:
        return f"{total}-byte datagram on a {mtu}-byte MTU"
    if body[8] == 0:
        return "TTL 0"
    if inet_sum(body[:hlen]) != 0xffff:
        return "IPv4 header checksum"
    if struct.unpack_from("!H", body, 6)[0] & 0x3fff or body[8] != 64 or body[12:16] not in OURS:
        return None                                 # forwarded, or a fragment (its L4 checksum spans the datagram)
    l4 = body[hlen:total]
    if body[9] == 1 and len(l4) >= 4 and inet_sum(l4) != 0xffff:
        return f"ICMP checksum (type {l4[0]})"
    if body[9] == 17 and len(l4) >= 8 and struct.unpack_from("!H", l4, 6)[0]:
        pseudo = body[12:20] + struct.pack("!HH", 17, len(l4))
        if inet_sum(pseudo + l4) != 0xffff:
            return "UDP checksum"
    return None


# --- one family ------------------------------------------------------------------------

def _failure(family, seed, batch, batch_size, kind, detail, loop_guard=True) -> dict:
    frames = (batch + 1) * batch_size
    return {"family": family, "seed": seed, "batch": batch, "kind": kind, "detail": detail,
            "reproduce": f"graphnet fuzz {family} --seed {seed} --frames {frames} --batch {batch_size}"
                         + ("" if loop_guard else " --no-loop-guard")}


class _Failures:
    """The first failure of each kind, with the number of batches that
    had it (a full pool fails every batch after the first)."""

    def __init__(self):
        self.kinds: dict = {}

    def add(self, f: dict) -> None:
        first = self.kinds.setdefault(f["kind"], dict(f, batches=0))
        first["batches"] += 1

    def list(self) -> list:
        return list(self.kinds.values())


def check_batch(g: FuzzGraph, a: dict, b: dict) -> list:
    """[(kind, detail)] of what is wrong after a batch (module docstring)."""
    problems = []
    led = ledger(g, a, b)
    if led["balance"]:
        problems.append(("ledger", f"{led}"))
    loop = g.engine.main.loop_stats()
    if loop["pending_frames"]:
        problems.append(("pending", f"{loop['pending_frames']} frames pending when idle"))
    stats = g.engine.buffer_stats()
    if stats["double_frees"]:
        problems.append(("double-free", f"{stats['double_frees']} double frees"))
    if stats["in_use"] != b["held_buffers"]:
        problems.append(("buffers", f"{stats['in_use']} buffers in use, {b['held_buffers']} held "
                                    f"({b['held']} packets)"))
    for i, (node, sym, _sev, _desc) in enumerate(g.engine.errors):
        n = b["errors"][i] - a["errors"][i]
        if n and (sym == "none" or (node == "error-drop" and sym == "bad-next")):
            problems.append(("unnamed-drop", f"{n} packets counted under {node} {sym}"))
    for k, iface in enumerate(g.ifs):
        mac = bytes.fromhex(MACS[k].replace(":", ""))
        for p in iface.capture.packets():
            why = check_output(p, mac, MTUS[k])
            if why:
                problems.append(("bad-output", f"on if{k}: {why}: {p[:64].hex()}"))
                break
        iface.capture.clear()
    return problems


def _pool_detail(g: FuzzGraph) -> str:
    reass = g.reassembly.stats()["buffers_held"]
    queued = g.neighbors.queued_buffers()
    stats = g.engine.buffer_stats()
    return (f"{stats['in_use']} of {stats['total']} buffers in use: reassembly holds {reass}, "
            f"ARP queues {queued}")


def run_family(family: str, frames: int, seed: int, *, batch: int = DEFAULT_BATCH, progress=None,
               loop_guard: bool = True, idle_timeout: float = 30.0, recover_seconds: float = 3.0,
               graph: Optional[FuzzGraph] = None, **graph_kw) -> dict:
    """Run one family in this process; returns its result dict (see
    ``graphnet fuzz --help`` for the keys). progress(batch_index) is
    called after each batch. When the pool runs dry (a ``no-buffers``
    failure) the loop runs recover_seconds (past the reassembly timeout)
    before the batch goes on, so every frame is still sent; frames_per_s
    leaves those waits out (``recovery_s``). graph_kw go to FuzzGraph (or
    give a built ``graph`` of that family: it is closed at the end)."""
    g = graph or FuzzGraph(family, seed, loop_guard=loop_guard, **graph_kw)
    failures = _Failures()
    totals = dict.fromkeys(("injected", "created", "out", "dropped", "consumed", "held"), 0)
    first = g.snapshot()
    try:
        t0 = time.perf_counter()
        busy = recovery = 0.0
        done = 0
        k = 0
        while done < frames and len(failures.kinds) < MAX_FAILURES:
            n = min(batch, frames - done)
            a = g.snapshot()
            stalls = g.input.stats()["no_buffers"]
            t = time.perf_counter()
            g.input.start(n)
            g.engine.run_until_idle(idle_timeout)
            busy += time.perf_counter() - t
            if g.input.stats()["no_buffers"] > stalls:
                # the pool ran dry: say so, then run the loop through the
                # holders' timeouts (the frames go out as buffers come back)
                failures.add(_failure(family, seed, k, batch, "no-buffers", _pool_detail(g), loop_guard))
                t = time.perf_counter()
                g.engine.run(recover_seconds)
                recovery += time.perf_counter() - t
                t = time.perf_counter()
                g.engine.run_until_idle(idle_timeout)
                busy += time.perf_counter() - t
            b = g.snapshot()
            if g.input.remaining:
                failures.add(_failure(family, seed, k, batch, "not-idle",
                                      f"{g.input.remaining} frames not generated after the batch ("
                                      f"{_pool_detail(g)})", loop_guard))
                break
            for kind, detail in check_batch(g, a, b):
                failures.add(_failure(family, seed, k, batch, kind, detail, loop_guard))
            for key, v in ledger(g, a, b).items():
                if key in totals:
                    totals[key] += v
            done += n
            k += 1
            if progress is not None:
                progress(k)
        wall = time.perf_counter() - t0
        last = g.snapshot()
        reached = {name: last["vectors"][name] - first["vectors"][name] for name in g.names
                   if last["vectors"][name] - first["vectors"][name]}
        counters = {f"{node} {sym}": last["errors"][i] - first["errors"][i]
                    for i, (node, sym, _s, _d) in enumerate(g.engine.errors)
                    if last["errors"][i] - first["errors"][i]}
        held = last["held"]
        gen_stats = g.input.stats()
    finally:
        g.close()
    leaked = g.engine.buffer_stats()["in_use"]            # after close: held buffers freed too
    if leaked:
        failures.add(_failure(family, seed, max(k - 1, 0), batch, "leak", f"{leaked} buffers in use after close",
                              loop_guard))
    return {"family": family, "frames": totals["injected"], "requested": frames, "seed": seed, "batch": batch,
            "batches": k, "seconds": round(wall, 3), "recovery_s": round(recovery, 3), "frames_per_s": round(totals["injected"] / busy) if busy else 0,
            "failures": failures.list(), "leaked_buffers": leaked, "ledger": totals, "held_at_end": held,
            "nodes": reached, "not_reached": [n for n in EXPECTED[family] if n not in reached],
            "counters": counters, "generator": gen_stats}


# --- isolation: one child process per family --------------------------------------------

def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_isolated(family: str, frames: int, seed: int, *, batch: int = DEFAULT_BATCH, hang_seconds: float = 60.0,
                 max_rss: int = 2 << 30, loop_guard: bool = True) -> dict:
    """run_family in a forked child: a crash, a hang (no batch finished for
    hang_seconds) or resident memory grown by more than max_rss over the
    caller's (which the child starts with) ends the child and becomes a
    failure with the seed and batch, instead of taking the caller down."""
    rss_limit = _rss_bytes(os.getpid()) + max_rss
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                                # child
        code = 0
        try:
            os.close(r)
            out = os.fdopen(w, "w", buffering=1)
            res = run_family(family, frames, seed, batch=batch, loop_guard=loop_guard,
                             progress=lambda k: out.write(json.dumps({"batch": k}) + "\n"))
            out.write(json.dumps({"result": res}) + "\n")
            out.flush()
        except BaseException as e:                             # noqa: BLE001 - reported to the parent
            try:
                out.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
                out.flush()
            except Exception:
                pass
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    batches_done, result, error, buf = 0, None, None, b""
    last = time.monotonic()
    why = None
    try:
        while True:
            ready, _, _ = select.select([r], [], [], 0.5)
            if ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    msg = json.loads(line)
                    if "batch" in msg:
                        batches_done = msg["batch"]
                        last = time.monotonic()
                    result = msg.get("result", result)
                    error = msg.get("error", error)
            if time.monotonic() - last > hang_seconds:
                why = ("hang", f"no batch finished in {hang_seconds:g} s")
            elif _rss_bytes(pid) > rss_limit:
                why = ("memory", f"resident memory grew by more than {max_rss >> 20} MiB")
            if why:
                os.kill(pid, signal.SIGKILL)
                break
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if result is not None and why is None:
        return result
    if why is None:
        if os.WIFSIGNALED(status):
            why = ("crash", f"killed by {signal.Signals(os.WTERMSIG(status)).name}")
        else:
            why = ("error", error or f"exit status {os.WEXITSTATUS(status)}")
    fail = _failure(family, seed, batches_done, batch, *why, loop_guard)
    return {"family": family, "frames": batches_done * batch, "requested": frames, "seed": seed, "batch": batch,
            "batches": batches_done, "seconds": None, "frames_per_s": 0, "failures": [fail],
            "leaked_buffers": None, "nodes": {}, "not_reached": list(EXPECTED[family]), "counters": {}}


def families(name: str) -> list:
    if name == "all":
        return list(FAMILIES)
    if name not in FAMILIES:
        import difflib
        hint = difflib.get_close_matches(name, list(FAMILIES), n=1)
        raise ValueError(f"no fuzz family {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                         + f"; families: {', '.join(FAMILIES)}, all")
    return [name]


def format_result(res: dict) -> str:
    """Human-readable report of one family."""
    lines = [f"{res['family']}: {res['frames']:,} frames"
             + (f" in {res['seconds']:.1f} s, {res['frames_per_s']:,.0f} frames/s" if res.get("seconds") else "")
             + f", seed {res['seed']}, {len(res['failures'])} failure(s), "
             + f"leaked buffers: {res['leaked_buffers']}"]
    if res.get("ledger"):
        led = res["ledger"]
        lines.append("  ledger: injected {injected:,} + created {created:,} = out {out:,} + dropped {dropped:,} "
                     "+ consumed {consumed:,} + held {held:,}".format(**led))
    if res.get("nodes"):
        lines.append("  frames reached per node:")
        for name, n in res["nodes"].items():
            lines.append(f"    {name:<28} {n:>12,}")
    if res.get("not_reached"):
        lines.append(f"  NOT reached: {', '.join(res['not_reached'])}")
    for f in res["failures"]:
        more = f" (and {f['batches'] - 1} later batches)" if f.get("batches", 1) > 1 else ""
        lines.append(f"  FAILURE {f['kind']} in batch {f['batch']}{more}: {f['detail']}")
        lines.append(f"    reproduce: {f['reproduce']}")
    return "\n".join(lines)
