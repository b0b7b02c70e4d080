"""CLI commands about the engine itself, as vppctl has them: ``show logging``,
``show threads``, ``show memory``, ``show clock``, ``exec <file>``, and the
aliases vppctl users type (``show ip arp``, ``show hardware-interfaces``,
``show interface rx-placement``, ``show ip fib summary``).

Every command here only reads engine state (``exec`` runs other commands
through the same registry), so each is safe at any time.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from graphnet.cli.registry import REGISTRY, CommandError, UsageError, command

EXEC_MAX_BYTES = 1 << 20          # a command file larger than this is refused
EXEC_MAX_DEPTH = 8                # exec inside exec: a file that runs itself stops here
_exec_depth = threading.local()


def _count_arg(args: list, default: int, what: str) -> int:
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or not 0 < int(args[0]) <= 100_000:
        raise UsageError(f"{what} is a number from 1 to 100000")
    return int(args[0])


@command("show logging", help="the engine's recent log lines (default the last 50)", usage="show logging [<n>]")
def show_logging(engine, args):
    from graphnet.vlib import logring
    lines = logring.recent(_count_arg(args, 50, "the line count"))
    return "\n".join(lines) if lines else "no log lines yet"


@command("show threads", help="the engine's threads: the main loop and the control-plane threads",
         usage="show threads")
def show_threads(engine, args):
    if args:
        raise UsageError("show threads takes no arguments")
    loop = getattr(engine, "_thread", None)
    rows = [f"{'ID':<4}{'Name':<28}{'Type':<14}{'TID':>8}"]
    for i, t in enumerate(sorted(threading.enumerate(), key=lambda t: t.native_id or 0)):
        kind = "main loop" if t is loop else ("main" if t is threading.main_thread() else "control")
        rows.append(f"{i:<4}{t.name[:27]:<28}{kind:<14}{t.native_id or 0:>8}")
    return "\n".join(rows)


def _rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@command("show memory", help="buffer arena, frames, process RSS and the sizes of the tables",
         usage="show memory")
def show_memory(engine, args):
    if args:
        raise UsageError("show memory takes no arguments")
    s = engine.pool.stats()
    loop = engine.main.loop_stats()
    lines = [f"buffer arena: {s['total']} buffers of 2048 data bytes, {s['free']} free "
             f"({s['cached']} in per-loop caches), {s['in_use']} in use",
             f"frames: {loop['frames_allocated']} allocated, {loop['frames_free']} free, "
             f"{loop['pending_frames']} pending",
             f"trace buffer: {loop['trace_bytes']} bytes used",
             f"timers: {loop['timers_active']} active",
             f"process RSS: {_rss_bytes() / (1 << 20):.1f} MiB"]
    if "ip4-lookup" in engine.registrations:
        from graphnet.fib.ip4_fib import ip4_fib
        fib = ip4_fib(engine)
        f = fib.stats()
        lines.append(f"ip4 fib: {len(fib.routes())} routes (built-in prefixes included), {f['adjacencies']} adjacencies, "
                     f"{f['plies']} mtrie plies ({f['mtrie_bytes'] / (1 << 20):.1f} MiB)")
    return "\n".join(lines)


@command("show clock", help="wall clock, engine uptime and main-loop counts", usage="show clock")
def show_clock(engine, args):
    if args:
        raise UsageError("show clock takes no arguments")
    loop = engine.main.loop_stats()
    up = time.monotonic() - engine.start_time
    return (f"time {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, engine up {up:.3f} s\n"
            f"main loop: {loop['loops']} iterations, {loop['sleeps']} sleeps, "
            f"{loop['busy_polls']} busy polls (window {loop['busy_poll_us']} us), "
            f"tick {engine.main.tick_ns} ns")


@command("set engine busy-poll", help="after work, microseconds the main loop keeps looking for more "
         "before it sleeps (0: sleep at once)", usage="set engine busy-poll <microseconds>")
def set_busy_poll(engine, args):
    if len(args) != 1 or not args[0].isdigit():
        raise UsageError("set engine busy-poll takes a number of microseconds")
    try:
        engine.main.set_busy_poll(int(args[0]))
    except ValueError as e:
        raise CommandError(str(e)) from None
    return ""


@command("show interface rx-placement", help="which thread's loop reads each interface's input node, "
         "in which rx mode", usage="show interface rx-placement")
def show_rx_placement(engine, args):
    if args:
        raise UsageError("show interface rx-placement takes no arguments")
    rows = [f"Thread 0 (main loop):"]
    for name in engine.interfaces:
        dev = engine.interfaces.devices[engine.interfaces.info(name)["sw_if_index"]]
        rows.append(f"  {name:<20} queue 0   {getattr(dev, 'rx_mode', '-')}")
    return "\n".join(rows) if len(rows) > 1 else "no interfaces"


@command("show ip fib summary", help="IPv4 route counts by prefix length", usage="show ip fib summary")
def show_ip_fib_summary(engine, args):
    if args:
        raise UsageError("show ip fib summary takes no arguments")
    if "ip4-lookup" not in engine.registrations:
        raise CommandError("show ip fib summary: this engine has no IPv4 graph")
    from graphnet.fib.ip4_fib import ip4_fib
    by_len: dict = {}
    for prefix, _adj in ip4_fib(engine).routes():
        plen = int(prefix.rsplit("/", 1)[1])
        by_len[plen] = by_len.get(plen, 0) + 1
    rows = [f"{'Prefix length':<16}{'Count':>10}"] + [f"{'/' + str(p):<16}{n:>10}" for p, n in sorted(by_len.items())]
    rows.append(f"{'total':<16}{sum(by_len.values()):>10}")
    return "\n".join(rows)


def _alias(path: str, target: str, help: str) -> None:
    def run(engine, args):
        cmd = REGISTRY.commands[tuple(target.split())]
        return cmd.fn(engine, args)
    command(path, help=help, usage=f"{path} (as {target})")(run)


_alias("show ip arp", "show ip neighbors", "the IPv4 neighbour (ARP) table")
_alias("show hardware-interfaces", "show hardware", "interfaces: kind, MAC, MTU, rx mode, device details")


@command("exec", help="run the CLI commands in a file, one per line (# starts a comment); stops at the "
         "first failing line, naming it", usage="exec <file>")
def exec_file(engine, args):
    if len(args) != 1:
        raise UsageError("exec takes one file name")
    path = Path(args[0])
    depth = getattr(_exec_depth, "n", 0)
    if depth >= EXEC_MAX_DEPTH:
        raise CommandError(f"exec {path}: more than {EXEC_MAX_DEPTH} nested exec commands")
    try:
        if path.stat().st_size > EXEC_MAX_BYTES:
            raise CommandError(f"exec {path}: larger than {EXEC_MAX_BYTES} bytes")
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"exec {path}: cannot read it: {getattr(e, 'strerror', None) or e}") from None
    out = []
    _exec_depth.n = depth + 1
    try:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                # exec runs on the loop's thread, so engine.call runs each command at once
                result = REGISTRY.execute(engine, line)
            except CommandError as e:
                raise CommandError(f"exec {path}:{lineno}: {line.strip()}: {e}") from None
            if result:
                out.append(str(result))
    finally:
        _exec_depth.n = depth
    return "\n".join(out)
