"""Documents repository."""
