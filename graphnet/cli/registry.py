"""The command registry and dispatcher, in the style of ``vppctl``.

    from graphnet.cli.registry import command, execute, UsageError

    @command("show runtime", help="per node counters", usage="show runtime [all]")
    def show_runtime(engine, args):
        return engine.show("runtime", *args)

    execute(engine, "sh run all")        # -> the text of show runtime all

A command is a path of one or more words; the dispatcher matches the longest
registered path that prefixes the line, word by word, and hands the remaining
words to the command as ``args``. As in vppctl, any word may be shortened to
an unambiguous prefix (``sh run`` is ``show runtime``); an exact word always
wins over a longer one it prefixes.

Invariants:

- ``execute`` either returns the command's text or raises ``CommandError``
  (an unknown or ambiguous command, bad arguments, or an error from the
  engine); no other exception escapes it. Its message is one line: what
  was wrong (and the usage, for bad arguments). An unexpected exception
  inside a command is logged in one line (with its traceback only at
  debug level) and reported as a CommandError.
- Commands run in the engine's loop thread, through ``engine.call``, so the
  state they read and change is consistent with the data plane. When no
  engine is given (``help``), they run in the caller's thread.
- Registering the same path twice replaces the first registration (a later
  module may refine a command); a path is never both lost and half-present.
"""
from __future__ import annotations

import difflib
import logging
import shlex
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

log = logging.getLogger("graphnet.cli")


HELP_WIDTH = 80
HELP_COLUMN = 34          # where the short help starts


def format_help_entry(usage: str, text: str, width: int = HELP_WIDTH) -> str:
    """One command's help: ``usage`` then ``text`` wrapped into the column
    from HELP_COLUMN to `width`. A usage too long for the column, or with
    several forms (``a ... | a off``), gets a line per form (wrapped, with
    an indented continuation) and the help below. No line is wider than
    `width` unless a single word is."""
    import re
    import textwrap
    body = textwrap.wrap(text, max(20, width - HELP_COLUMN)) or [""]
    pad = " " * HELP_COLUMN
    # "pcap trace ... | pcap trace off": one line per form of the command
    first = usage.split(" ", 1)[0]
    forms = re.split(r" \| (?=" + re.escape(first) + r"\b)", usage)
    if len(forms) == 1 and len(usage) + 2 <= HELP_COLUMN:
        lines = [f"{usage:<{HELP_COLUMN}}{body[0]}"] + [pad + b for b in body[1:]]
    else:
        lines = [l for f in forms for l in textwrap.wrap(f, width, subsequent_indent="    ",
                                                           break_long_words=False, break_on_hyphens=False)]
        lines += [pad + b for b in body]
    return "\n".join(l.rstrip() for l in lines)


class CommandError(Exception):
    """A command line that cannot be carried out; its text is for the user."""


class UsageError(CommandError):
    """Raised by a command whose arguments are wrong. The dispatcher adds the
    command's usage line to the message."""


@dataclass
class Command:
    """One registered command: ``fn(engine, args) -> str``."""
    path: tuple
    fn: Callable
    help: str = ""
    usage: str = ""
    needs_engine: bool = True
    hidden: bool = False           # left out of help (aliases such as "?")
    json: Optional[Callable] = None        # fn(engine, args) -> JSON-able data, for `<command> --json`
    json_schema: str = ""                  # what that data holds, shown by `help <command>`

    @property
    def name(self) -> str:
        return " ".join(self.path)


@dataclass
class _Trie:
    children: dict = field(default_factory=dict)
    command: Optional[Command] = None


class Registry:
    """A set of commands arranged as a trie of words (see module docstring)."""

    def __init__(self):
        self.root = _Trie()
        self.commands: dict[tuple, Command] = {}

    # --- registering ------------------------------------------------------------

    def command(self, path: str, *, help: str = "", usage: str = "", needs_engine: bool = True,
                hidden: bool = False):
        """Decorator registering ``fn(engine, args) -> str`` under ``path``."""
        words = tuple(path.split())
        if not words:
            raise ValueError("a command path needs at least one word")

        def wrap(fn):
            cmd = Command(words, fn, help or (fn.__doc__ or "").strip().split("\n")[0],
                          usage or path, needs_engine, hidden)
            self.add(cmd)
            return fn
        return wrap

    def add(self, cmd: Command) -> None:
        node = self.root
        for w in cmd.path:
            node = node.children.setdefault(w, _Trie())
        node.command = cmd
        self.commands[cmd.path] = cmd

    # --- matching -----------------------------------------------------------------

    def _child(self, node: _Trie, word: str, matched: list) -> Optional[_Trie]:
        """The child for `word` (exact, else unique prefix); None if no child
        matches; CommandError if the prefix is ambiguous."""
        if word in node.children:
            return node.children[word]
        cands = sorted(w for w in node.children if w.startswith(word))
        if len(cands) == 1:
            return node.children[cands[0]]
        if len(cands) > 1:
            where = " ".join(matched + [word])
            raise CommandError(f"ambiguous command {where!r}: could be "
                               + ", ".join(repr(" ".join(matched + [c])) for c in cands))
        return None

    def match(self, words: list) -> tuple[Command, list]:
        """(command, remaining args) for the longest registered prefix of words."""
        node, best, matched = self.root, None, []
        for k, w in enumerate(words):
            child = self._child(node, w, matched)
            if child is None:
                break
            node = child
            matched.append(w)
            if node.command is not None:
                best = (node.command, list(words[k + 1:]))
        if best is None:
            raise CommandError(self._unknown_message(words))
        return best

    def _unknown_message(self, words: list) -> str:
        line = " ".join(words)
        names = [c.name for c in self.commands.values()]
        # compare against commands of about the length the user typed
        guesses = difflib.get_close_matches(line, names, n=3, cutoff=0.5)
        if not guesses:
            n = max(1, min(len(words), 3))
            heads = {" ".join(c.path[:n]): c.name for c in self.commands.values()}
            guesses = [heads[h] for h in difflib.get_close_matches(" ".join(words[:n]), list(heads), n=3, cutoff=0.5)]
        msg = f"unknown command {line!r}"
        if guesses:
            msg += "; did you mean " + " or ".join(repr(g) for g in dict.fromkeys(guesses)) + "?"
        return msg + " (type 'help' for the list)"

    def complete(self, words: list, prefix: str) -> list[str]:
        """Words that can follow `words` and start with `prefix` (for readline)."""
        node, matched = self.root, []
        for w in words:
            try:
                node = self._child(node, w, matched)
            except CommandError:
                return []
            if node is None:
                return []
            matched.append(w)
        return sorted(w for w in node.children if w.startswith(prefix))

    def help_text(self, prefix: Iterable[str] = (), width: int = HELP_WIDTH) -> str:
        """The commands starting with `prefix`, as vppctl lists them: the
        usage in a column, the short help beside it wrapped at `width`
        (a usage too long for the column gets the help on the next lines)."""
        prefix = tuple(prefix)
        cmds = sorted((c for c in self.commands.values()
                       if c.path[:len(prefix)] == prefix and not c.hidden),
                      key=lambda c: c.path)
        if not cmds:
            raise CommandError(self._unknown_message(list(prefix)))
        text = "\n".join(format_help_entry(c.usage, c.help, width) for c in cmds)
        if len(cmds) == 1 and cmds[0].path == prefix and cmds[0].json is not None:
            text += "\n\n" + format_help_entry(f"{cmds[0].name} --json", cmds[0].json_schema, width)
        return text

    # --- running ------------------------------------------------------------------

    def execute(self, engine, line: str) -> str:
        """Run one command line; returns its text or raises CommandError."""
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            raise CommandError(f"cannot parse {line!r}: {e}") from None
        if not words:
            return ""
        if words[-1] == "?" and len(words) > 1:        # "show ?" lists the show commands
            return self.help_text(self._expand(words[:-1]))
        cmd, args = self.match(words)
        fn = cmd.fn
        if "--json" in args:
            if cmd.json is None:
                raise CommandError(f"{cmd.name} has no --json output")
            args = [a for a in args if a != "--json"]
            fn = _as_json(cmd.json)
        try:
            if engine is None or not cmd.needs_engine:
                if cmd.needs_engine:
                    raise CommandError(f"{cmd.name!r} needs a running engine")
                out = fn(engine, args)
            else:
                out = engine.call(fn, engine, args)
        except UsageError as e:
            text = str(e)
            raise UsageError((text + "; " if text else "") + f"usage: {cmd.usage}") from None
        except CommandError:
            raise
        except (ValueError, KeyError, LookupError) as e:
            # errors the engine raises for bad names and states: their text is for users
            text = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
            raise CommandError(text if text.startswith(cmd.name) else f"{cmd.name}: {text}") from None
        except TimeoutError as e:
            raise CommandError(f"{cmd.name}: {e}") from None
        except Exception as e:
            # one line in the log; its traceback only when debugging (--log-level debug)
            log.error("command %r failed: %s: %s", line, type(e).__name__, e,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            raise CommandError(f"{cmd.name}: internal error: {type(e).__name__}: {e}") from None
        return "" if out is None else str(out)

    def _expand(self, words: list) -> list:
        """Words with abbreviations replaced by the full words they stand for."""
        node, out = self.root, []
        for w in words:
            child = self._child(node, w, out)
            if child is None:
                raise CommandError(self._unknown_message(words))
            full = next(k for k, v in node.children.items() if v is child)
            out.append(full)
            node = child
        return out


def _as_json(data_fn: Callable) -> Callable:
    """A command function printing data_fn's result as one line of JSON."""
    import json

    def run(engine, args):
        return json.dumps(data_fn(engine, args), sort_keys=True, default=str)
    return run


REGISTRY = Registry()
"""The registry every built-in command is in (see graphnet.cli.commands)."""


def command(path: str, *, help: str = "", usage: str = "", needs_engine: bool = True,
            hidden: bool = False):
    """Register a command in the default registry (see Registry.command)."""
    return REGISTRY.command(path, help=help, usage=usage, needs_engine=needs_engine, hidden=hidden)


def json_view(path: str, schema: str):
    """Decorator giving the registered command `path` a ``--json`` form:
    ``fn(engine, args) -> data`` (dicts, lists, numbers, strings), described
    by `schema` in ``help <path>``. The data's keys are a stable interface:
    add keys, never rename or remove them."""
    def wrap(fn):
        cmd = REGISTRY.commands[tuple(path.split())]
        cmd.json, cmd.json_schema = fn, schema
        return fn
    return wrap


def default_registry() -> Registry:
    """The default registry, with the built-in commands: the package
    graphnet.cli loads them (importing this module imports the package
    first), so this module imports none of them (no import cycle)."""
    return REGISTRY


def execute(engine, line: str, registry: Optional[Registry] = None) -> str:
    """Run one command line against engine (see Registry.execute)."""
    return (registry or default_registry()).execute(engine, line)
