"""Documents schemas."""
