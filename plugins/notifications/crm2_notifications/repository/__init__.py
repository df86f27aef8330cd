"""Every query of the notifications plugin."""
