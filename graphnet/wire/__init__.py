"""Packet formats: packed header layouts, checksums and formatters, with no
knowledge of the graph. Lengths are checked before any field is read."""
