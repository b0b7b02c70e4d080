"""The command line and control plane: VPP-style commands (registry,
commands), the control socket (control) and the ``graphnet`` program (main)."""
from graphnet.cli.registry import CommandError, UsageError, command, execute

__all__ = ["CommandError", "UsageError", "command", "execute"]
