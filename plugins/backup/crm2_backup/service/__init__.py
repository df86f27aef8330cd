"""Backup's business rules: run, verify (drill), restore, prune. Each owns its sessions."""
