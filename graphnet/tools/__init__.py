"""Scripts for people: scaffold a node (new_node), check the layers (layers)."""
