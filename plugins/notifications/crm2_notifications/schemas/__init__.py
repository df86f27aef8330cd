"""Request and response bodies of the notifications plugin."""
