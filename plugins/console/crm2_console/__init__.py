"""crm2 console: the web console's static files at ``/`` and ``GET /api/v1/console/views``."""
