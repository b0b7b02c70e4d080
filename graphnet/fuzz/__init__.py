"""Structure-aware fuzzing of the IPv4 host graph at C speed.

``graphnet.fuzz.gen``: the ``fuzz-input`` node and its per-family frame
generators (Cython); ``graphnet.fuzz.runner``: the graph, the batches and
the checks after each (the packet ledger is documented there). The
command is ``graphnet fuzz [family|all] [--frames N] [--seed S] [--json]``.
"""
