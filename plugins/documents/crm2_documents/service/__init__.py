"""Documents service."""
