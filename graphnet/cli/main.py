"""The ``graphnet`` program.

    graphnet run   [-c startup.toml | --demo pg] [--seconds N] [--socket PATH] [--no-cli]
    graphnet ctl   [--socket PATH] [--timeout S] [command words ...]
    graphnet graph [-c startup.toml | --demo pg] [--dot]
    graphnet config [-c startup.toml] [--default | --demo pg]
    graphnet bench ...                 (handed to graphnet.bench.main)
    graphnet fuzz  [FAMILY|all] [--frames N] [--seed S] [--batch B] [--json]
    graphnet [--log-level LEVEL] [--version] ...

Invariants: ``main`` returns an exit status and never lets a traceback reach
the user for a user error (bad config, unknown command, no engine listening,
missing privileges): those print one message to stderr and return 1 (2 for
bad program arguments, from argparse; 130 after Ctrl-C). An unexpected
exception prints one line too; ``--log-level debug`` adds its traceback.
``run`` always closes the engine (and so its interfaces: TAPs, and a
namespace it created) and removes its socket on the way out, whether it
ends by --seconds, Ctrl-C or SIGTERM, also when the signal comes while
it is still creating its devices. ``bench`` (and whatever runs inside
``cleanup_on_signals()``) turns the first SIGTERM into a Terminated
exception and the first SIGINT into KeyboardInterrupt in the main thread,
so its ``finally`` blocks and context managers remove the namespaces,
TAPs, processes and files it made, as a normal exit does; signals that
come during that cleanup are ignored (SIGKILL still stops it at once).
Exit status after SIGTERM: 143. ``run`` with no file runs the
built-in default (TAP gn0, kernel side in namespace graphnet0) and, when
not root, says so and points at ``--demo pg`` instead of failing halfway.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shlex
import signal
import sys
import threading
import time
from typing import Optional

log = logging.getLogger("graphnet.main")

HISTORY_FILE = "~/.graphnet_history"
PROMPT = "graphnet# "


class UserError(Exception):
    """A message for the user, printed without a traceback."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup code runs (a
    BaseException, as KeyboardInterrupt is: ``except Exception`` does not
    swallow it)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _forked_child(owner_pid: int, signum: int) -> bool:
    """In a child forked by a library (pyroute2 forks to enter a network
    namespace and ends the child with SIGTERM), our handlers are inherited
    but are not the child's: it must die of the signal as by default, not
    run the parent's cleanup. True if this is such a child (it then dies)."""
    if os.getpid() == owner_pid:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return True


@contextlib.contextmanager
def cleanup_on_signals():
    """Inside: the first SIGTERM raises Terminated, the first SIGINT
    KeyboardInterrupt, in the main thread; later ones only print that
    cleanup is under way, so a second Ctrl-C cannot cut the cleanup short.
    A signal ignored when the program started (``nohup``, a background
    job's SIGINT) stays ignored. Main thread only."""
    caught: list = []
    owner = os.getpid()

    def handler(signum, frame):
        if _forked_child(owner, signum):
            return
        if caught:
            os.write(2, b"graphnet: cleaning up (SIGKILL stops at once)\n")
            return
        caught.append(signum)
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

    old = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) is not signal.SIG_IGN:
            old[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --- graphnet run ----------------------------------------------------------------------

def _load_config(path: Optional[str], demo: Optional[str] = None):
    from graphnet.config import builtin_config, load
    if path and demo:
        raise UserError("give a startup file (-c) or a built-in config (--demo), not both")
    return load(path) if path else builtin_config(demo or "default")


NEEDS_ROOT_DEFAULT = ("the default configuration creates TAP gn0 (kernel side in network namespace "
                      "graphnet0) and needs root; run as root, or use `graphnet run --demo pg` "
                      "(the packet generator demo, no interfaces)")


def start_attach_server(engine, cfg, control_path: str):
    """Serve the attach socket ([app_socket]) when the graph has the session
    layer's app-queue node; the server, or None. Default path: app.sock in
    the control socket's directory."""
    from graphnet.cli.control import ControlError
    from graphnet.session.attach import AttachServer
    from graphnet.unix_socket import SocketSetupError
    if not cfg.app_socket_enabled or "app-queue" not in engine.registrations:
        return None
    path = cfg.app_socket or os.path.join(os.path.dirname(str(control_path)), "app.sock")
    try:
        return AttachServer(engine, path, group=cfg.app_socket_group,
                            max_clients=cfg.app_socket_max_clients).start()
    except SocketSetupError as e:
        raise ControlError(f"attach socket: {e}") from None


def cmd_run(args) -> int:
    import graphnet
    from graphnet.cli.control import ControlServer, default_socket_path
    from graphnet.config import build_engine, reach_hints, socket_path

    if args.seconds is not None and args.seconds < 0:
        raise UserError("--seconds must be >= 0")
    cfg = _load_config(args.config, args.demo)
    if cfg.builtin == "default" and os.geteuid() != 0:
        raise UserError(NEEDS_ROOT_DEFAULT)
    if cfg.log_file is not None or cfg.log_level is not None:
        from graphnet.vlib import logring
        try:
            logring.configure(str(cfg.log_file) if cfg.log_file is not None else None, cfg.log_level)
        except OSError as e:
            raise UserError(f"{cfg.source}: [logging] file: cannot open {cfg.log_file}: {e}") from None
    engine = server = None
    stop = threading.Event()
    caught: list = []
    owner = os.getpid()

    def on_signal(signum, frame):
        if _forked_child(owner, signum):
            return
        caught.append(signum)
        stop.set()

    # before the devices are made: a signal while they are being created
    # ends the run once they exist, and the finally below removes them
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        engine = build_engine(cfg)
        if stop.is_set():
            raise _Stopped()
        if (cfg.cli_enabled or args.socket) and not args.no_cli:
            server = ControlServer(engine, socket_path(cfg, args.socket), group=cfg.cli_group,
                                   max_clients=cfg.cli_max_clients, idle_timeout=cfg.cli_idle_timeout).start()
        engine.start()
        attach = start_attach_server(engine, cfg, server.path if server is not None else socket_path(cfg, args.socket))
        print(f"graphnet {graphnet.__version__}: engine {engine.name!r} running "
              f"{len(engine.nodes)} nodes from {cfg.source}", flush=True)
        log.info("engine %r running %d nodes from %s", engine.name, len(engine.nodes), cfg.source)
        if cfg.startup_exec is not None:
            from graphnet.cli.registry import execute
            out = execute(engine, f"exec {shlex.quote(str(cfg.startup_exec))}")   # CommandError: one line, exit 1
            if out:
                print(out, flush=True)
        for line in reach_hints(engine):
            print(line, flush=True)
        if server is not None:
            hint = "" if server.path == default_socket_path() else f" --socket {shlex.quote(server.path)}"
            cmds = ["show interface", "show runtime"] if len(engine.interfaces) else ["show runtime"]
            if "ip4-input" in engine.registrations:
                cmds[1:1] = ["show ip neighbors", "show ip fib"]
            print(f"control socket {server.path}; try:\n" + "\n".join(f"  graphnet ctl{hint} {c}" for c in cmds),
                  flush=True)
        if attach is not None:
            print(f"attach socket {attach.path}: apps in other processes use graphnet.app "
                  f"(GRAPHNET_APP_SOCKET={shlex.quote(attach.path)})", flush=True)
        print("stop with Ctrl-C" + (f" (or wait {args.seconds:g} s)" if args.seconds is not None else ""),
              flush=True)
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while not stop.is_set():
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                break
            stop.wait(left)
            if not engine.running:
                raise UserError("the main loop stopped unexpectedly (see the log above)")
    except _Stopped:
        pass
    finally:
        if server is not None:
            server.close()
        if engine is not None:
            engine.close()
        for s, h in old.items():
            signal.signal(s, h)
    if caught:
        print(f"graphnet: stopped by {signal.Signals(caught[0]).name}", file=sys.stderr)
    return 0


class _Stopped(Exception):
    """A signal came while ``run`` was starting: skip to the cleanup."""


# --- graphnet ctl ----------------------------------------------------------------------

def cmd_ctl(args) -> int:
    from graphnet.cli.control import send_command
    from graphnet.cli.ping import client_timeout
    words = list(args.words)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        return interactive(args.socket, args.timeout)
    if words[0] == "monitor":                      # a live view, drawn here from show ... --json
        from graphnet.cli import monitor
        return monitor.run(words[1:], args.socket, args.timeout)
    if words[:2] == ["show", "graph"] and "--svg" in words:
        return _ctl_graph_svg(words, args)
    # one argument is a whole line (graphnet ctl "show runtime"); several are words
    line = words[0] if len(words) == 1 else shlex.join(words)
    ok, text = send_command(args.socket, line, timeout=client_timeout(line, args.timeout))
    if not ok:
        print(text, file=sys.stderr)
        return 1
    if text:
        print(text)
    return 0


def _completer(registry, names=()):
    """readline completion: command words from the registry; past the
    command words, the engine's interface and node names (`names`)."""
    import readline

    def complete(text, state):
        line = readline.get_line_buffer()[:readline.get_begidx()]
        try:
            words = shlex.split(line)
        except ValueError:
            return None
        cands = registry.complete(words, text)
        if not words:
            cands += [w for w in ("quit", "exit") if w.startswith(text)]
        elif not cands:
            cands = sorted(n for n in names if n.startswith(text))
        return cands[state] + " " if state < len(cands) else None
    return complete


def interactive(socket: Optional[str], timeout: float) -> int:
    """A prompt that sends each line to the engine; quit, exit or EOF ends it."""
    from graphnet.cli.control import ControlError, NoEngineError, default_socket_path, send_command
    from graphnet.cli.ping import client_timeout
    from graphnet.cli.registry import default_registry
    path = socket or default_socket_path()
    send_command(path, "", timeout=timeout)      # fail now, not at the first command
    ok, text = send_command(path, "show completion-names", timeout=timeout)
    names = text.split() if ok else []
    hist = os.path.expanduser(HISTORY_FILE)
    try:
        import readline
        readline.set_completer(_completer(default_registry(), names))
        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")
        try:
            readline.read_history_file(hist)
        except (FileNotFoundError, OSError):
            pass
        readline.set_history_length(1000)
    except ImportError:
        readline = None
    print(f"connected to {path}; 'help' lists commands, 'quit' leaves", flush=True)
    status = 0
    try:
        while True:
            try:
                line = input(PROMPT).strip()
            except EOFError:
                print()
                break
            except KeyboardInterrupt:
                print()
                continue
            if not line:
                continue
            if line in ("quit", "exit", "q"):
                break
            try:
                ok, text = send_command(path, line, timeout=client_timeout(line, timeout))
            except NoEngineError:
                print(f"graphnet: the engine on {path} has gone away", file=sys.stderr)
                status = 1
                break
            except ControlError as e:
                print(f"graphnet: {e}", file=sys.stderr)
                continue
            if text:
                print(text, file=sys.stdout if ok else sys.stderr, flush=True)
    finally:
        if readline is not None:
            try:
                readline.write_history_file(hist)
            except OSError:
                pass
    return status


# --- graphnet graph, bench -----------------------------------------------------------------

def _svg(dot_text: str, path: str) -> None:
    from graphnet.cli.graph_picture import GraphvizMissing, write_svg
    try:
        write_svg(dot_text, path)
    except GraphvizMissing as e:
        raise UserError(str(e)) from None


def _ctl_graph_svg(words: list, args) -> int:
    """`graphnet ctl show graph --svg FILE`: the running engine's graph, nodes
    sized and labelled by their load."""
    import json
    from graphnet.cli.control import send_command
    from graphnet.cli.graph_picture import dot_source
    k = words.index("--svg")
    if k + 1 >= len(words) or len(words) != 4:
        raise UserError("usage: graphnet ctl show graph --svg FILE")
    data = {}
    for key, line in (("graph", "show graph --json"), ("runtime", "show runtime all --json")):
        ok, text = send_command(args.socket, line, timeout=args.timeout)
        if not ok:
            raise UserError(text)
        data[key] = json.loads(text)
    _svg(dot_source(data["graph"], data["runtime"]), words[k + 1])
    print(f"wrote {words[k + 1]}")
    return 0


def cmd_graph(args) -> int:
    from graphnet.config import build_engine
    engine = build_engine(_load_config(args.config, args.demo), create_devices=False)
    try:
        if args.svg:
            from graphnet.cli.graph_picture import dot_source
            from graphnet.cli.json_views import graph_json
            _svg(dot_source(graph_json(engine, [])), args.svg)
            print(f"wrote {args.svg}")
        else:
            print(engine.show("dot" if args.dot else "graph"))
    finally:
        engine.close()
    return 0


def cmd_config(args) -> int:
    from graphnet.config import BUILTIN, build_engine
    if args.default or (args.demo and not args.config):
        _load_config(None, args.demo)              # an unknown --demo name is an error
        print(BUILTIN[args.demo or "default"][0], end="")
        return 0
    cfg = _load_config(args.config, args.demo)
    engine = build_engine(cfg, create_devices=False)
    engine.close()
    n_if = len(cfg.interfaces)
    print(f"{cfg.source}: ok: {len(engine.nodes)} nodes, {len(cfg.streams)} pg stream{'' if len(cfg.streams) == 1 else 's'}, "
          f"{n_if} interface{'' if n_if == 1 else 's'}"
          + (" (checked, not created)" if n_if else ""))
    return 0


def cmd_bench(args) -> int:
    try:
        mod = importlib.import_module("graphnet.bench")
    except ModuleNotFoundError as e:
        if e.name and ("graphnet.bench".startswith(e.name)):
            raise UserError("graphnet bench is not available: the graphnet.bench module is missing") from None
        raise
    fn = getattr(mod, "main", None)
    if fn is None:
        raise UserError("graphnet bench is not available: graphnet.bench has no main()")
    with cleanup_on_signals():
        rc = fn(list(args.args))
    return rc if isinstance(rc, int) else 0


def cmd_fuzz(args) -> int:
    import json
    from graphnet.fuzz import runner
    if args.frames < 1 or args.batch < 1:
        raise UserError("--frames and --batch must be >= 1")
    try:
        names = runner.families(args.family)
    except ValueError as e:
        raise UserError(str(e)) from None
    failed = False
    for name in names:
        res = runner.run_isolated(name, args.frames, args.seed, batch=args.batch, hang_seconds=args.hang,
                                  loop_guard=not args.no_loop_guard)
        failed |= bool(res["failures"]) or bool(res["leaked_buffers"])
        print(json.dumps(res) if args.json else runner.format_result(res), flush=True)
    return 1 if failed else 0


# --- the parser and main ----------------------------------------------------------------------

def _builtins() -> dict:
    from graphnet.config import BUILTIN
    return BUILTIN


def build_parser() -> argparse.ArgumentParser:
    import graphnet
    p = argparse.ArgumentParser(
        prog="graphnet",
        description="graphnet: a userspace packet-processing engine in the style of VPP's vlib.",
        epilog="Start an engine with `graphnet run`, then talk to it with `graphnet ctl show runtime`.")
    p.add_argument("--version", action="version", version=f"graphnet {graphnet.__version__}")
    p.add_argument("--log-level", default="warning", type=str.lower,
                   choices=("debug", "info", "warning", "error", "critical"),
                   help="logging level on stderr (default: warning)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    demos = ", ".join(f"{k} ({v[1]})" for k, v in _builtins().items() if k != "default")
    r = sub.add_parser("run", help="run an engine with a control socket",
                       description="Build an engine from a startup file and run it until Ctrl-C or SIGTERM, "
                                   "serving commands on a control socket. With no file: TAP gn0 with its "
                                   "kernel side (10.10.0.1/24) in network namespace graphnet0, created if "
                                   "missing and removed on exit if graphnet created it (needs root). "
                                   "Clean shutdown removes what was created.")
    r.add_argument("-c", "--config", metavar="FILE", help="startup file (TOML); see graphnet.config")
    r.add_argument("--demo", metavar="NAME", help=f"a built-in config instead: {demos}")
    r.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds")
    r.add_argument("--socket", metavar="PATH", help="control socket path (overrides [cli] socket)")
    r.add_argument("--no-cli", action="store_true", help="do not serve a control socket")
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("ctl", help="send a command to a running engine",
                       description="Send one command (e.g. `graphnet ctl show runtime`) to the engine "
                                   "listening on the control socket and print its answer; with no command, "
                                   "open an interactive prompt (tab completion, history in "
                                   f"{HISTORY_FILE}). `graphnet ctl help` lists the commands; `graphnet ctl "
                                   "monitor [--interval S] [--count N]` is a live view like top.")
    c.add_argument("--socket", metavar="PATH", help="control socket path (default: $GRAPHNET_SOCKET, "
                                                    "/run/graphnet/cli.sock for root, else a per-user path)")
    c.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for an answer (default 10)")
    c.add_argument("words", nargs=argparse.REMAINDER, metavar="command", help="command words")
    c.set_defaults(fn=cmd_ctl)

    g = sub.add_parser("graph", help="print the configured graph without running it",
                       description="Build the graph of a startup file (or the default config) and print "
                                   "its nodes and arcs, or Graphviz DOT with --dot. Interfaces are not "
                                   "created (stand-ins with the same nodes): no root needed.")
    g.add_argument("-c", "--config", metavar="FILE", help="startup file (TOML)")
    g.add_argument("--demo", metavar="NAME", help="a built-in config instead of the default")
    g.add_argument("--dot", action="store_true", help="print Graphviz DOT (pipe into `dot -Tsvg`)")
    g.add_argument("--svg", metavar="FILE", help="draw the graph into an SVG file (needs Graphviz); "
                                                 "`graphnet ctl show graph --svg FILE` draws a running "
                                                 "engine's, nodes sized by their load")
    g.set_defaults(fn=cmd_graph)

    k = sub.add_parser("config", help="check a startup file, or print the default one",
                       description="Check a startup file (parse, validate and build its graph without "
                                   "running it or creating its interfaces), or print a built-in config "
                                   "(--default, --demo pg): a commented starting point for your own.")
    k.add_argument("-c", "--config", metavar="FILE", help="startup file (TOML) to check")
    k.add_argument("--default", action="store_true", help="print the built-in default config")
    k.add_argument("--demo", metavar="NAME", help="print a built-in config (e.g. pg)")
    k.set_defaults(fn=cmd_config)

    b = sub.add_parser("bench", help="run benchmarks (graphnet bench --help)", add_help=False,
                       description="Benchmarks; arguments go to graphnet.bench.")
    b.add_argument("args", nargs=argparse.REMAINDER)
    b.set_defaults(fn=cmd_bench)

    from graphnet.fuzz.gen import FAMILIES
    fams = "; ".join(f"{k}: {v[1]}" for k, v in FAMILIES.items())
    z = sub.add_parser("fuzz", help="fuzz the IPv4 host graph with generated frames",
                       description="Send structure-aware generated frames (" + fams + ") through the whole "
                                   "IPv4 host and router graph (in memory, no TAP), batch by batch, checking "
                                   "after each: no crash or hang, no frame pending, buffers exact, every "
                                   "drop named, the packet ledger balanced, output well formed. Prints "
                                   "frames/s, frames reached per node, and each failure with the command "
                                   "that reproduces it; exit status 1 on any failure. Each family runs in "
                                   "a child process. See graphnet.fuzz.runner for the checks.")
    z.add_argument("family", nargs="?", default="all", help="a family or 'all' (default)")
    z.add_argument("--frames", type=int, default=1_000_000, metavar="N", help="frames per family (default 1000000)")
    z.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    z.add_argument("--batch", type=int, default=10_000, metavar="B",
                   help="frames per batch; the checks run after each (default 10000)")
    z.add_argument("--json", action="store_true", help="one JSON object per family: family, frames, "
                                                        "frames_per_s, failures, leaked_buffers, nodes, ...")
    z.add_argument("--hang", type=float, default=60.0, metavar="S",
                   help="a family that finishes no batch for S seconds is killed and reported (default 60)")
    z.add_argument("--no-loop-guard", action="store_true",
                   help="also send UDP from our own (or a broadcast) address and port 7, which loops "
                        "between udp4-echo and ip4-local on code without issue 9's fix")
    z.set_defaults(fn=cmd_fuzz)
    return p


def _user_errors() -> tuple:
    from graphnet.cli.control import ControlError
    from graphnet.cli.registry import CommandError
    from graphnet.config import ConfigError
    from graphnet.vlib.node import GraphError
    return (UserError, ConfigError, ControlError, CommandError, GraphError)


def _parse(argv: list) -> argparse.Namespace:
    """Parse argv; everything after ``bench`` goes to graphnet.bench untouched
    (argparse's REMAINDER would reject a leading option such as --quick)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--log-level" else 1
    if i < len(argv) and argv[i] == "bench":
        args = build_parser().parse_args(argv[:i + 1])
        args.args = argv[i + 1:]
        return args
    return build_parser().parse_args(argv)


def main(argv: Optional[list] = None) -> int:
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="graphnet: %(levelname)s %(name)s: %(message)s")
    for h in logging.getLogger().handlers:        # stderr keeps --log-level whatever [logging] level is
        h.setLevel(args.log_level.upper())
    try:
        user_errors = _user_errors()
    except ImportError as e:
        print(f"graphnet: cannot load graphnet ({e}); are its Cython extensions built? "
              f"(python setup.py build_ext --inplace, or pip install .)", file=sys.stderr)
        return 1
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("graphnet: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"graphnet: stopped by {e}", file=sys.stderr)
        return 128 + e.signum
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except PermissionError as e:
        where = f" on {e.filename}" if e.filename else ""
        print(f"graphnet: permission denied{where}: missing privileges (run as root, "
              f"or choose paths you own)", file=sys.stderr)
        return 1
    except Exception as e:
        if isinstance(e, user_errors):
            print(f"graphnet: {e}", file=sys.stderr)
            return 1
        log.debug("unexpected error", exc_info=True)
        print(f"graphnet: internal error: {type(e).__name__}: {e} "
              f"(--log-level debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
