"""Operating crm2: JSON logs, Prometheus metrics, OpenTelemetry traces, ``crm2 doctor``."""
