"""crm2 notifications: every plugin's events become something a person sees."""
