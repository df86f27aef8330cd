"""crm2 documents: document metadata and versions on pluggable storage."""
