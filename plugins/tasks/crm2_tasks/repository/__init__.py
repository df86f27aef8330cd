"""Repository of the tasks plugin, one module per concern."""
