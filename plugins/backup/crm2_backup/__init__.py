"""crm2-backup: scheduled, encrypted, verified backups, restore, restore drills, retention."""
