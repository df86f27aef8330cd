"""crm2-hello: the smallest complete crm2 plugin (greetings)."""
