"""Built-in nodes, one module per node family; each ends with ``NODES``."""
