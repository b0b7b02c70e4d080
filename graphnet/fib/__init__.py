"""Forwarding state: the 16-8-8 mtrie (``mtrie``) and the IPv4 FIB with its
adjacencies (``ip4_fib``). No graph knowledge: nodes in ``graphnet.nodes``
read this state per packet through the ``.pxd`` contracts; Python changes it
between loop iterations."""
