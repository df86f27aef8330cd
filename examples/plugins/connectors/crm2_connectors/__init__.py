"""crm2-connectors: a chat channel for notifications and a WebDAV backend for documents."""
