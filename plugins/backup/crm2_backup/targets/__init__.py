"""Backup targets: what a set holds. The built-in ones, and the contract every target keeps."""
