"""The command line and control plane: VPP-style commands (registry,
commands; importing the package loads the built-in commands), the control socket (control) and the ``graphnet`` program (main)."""
from graphnet.cli.registry import CommandError, UsageError, command, execute
# the built-in commands register themselves in registry.REGISTRY on import
from graphnet.cli import (commands, ip4, system, packet_generator, interface_commands, json_views, ping,  # noqa: F401,E402
                          fault_commands, tcp)

__all__ = ["CommandError", "UsageError", "command", "execute"]
