"""Service of the notifications plugin, one module per concern."""
