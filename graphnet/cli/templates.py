"""Moved to graphnet.io.templates (packet templates are the packet
generator's, below the CLI); this name stays for old imports."""
import sys

from graphnet.io import templates as _templates

sys.modules[__name__] = _templates
