"""Builtin applications on the session layer (issue 12): the UDP echo
server (graphnet.apps.echo)."""
