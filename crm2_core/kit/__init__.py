"""The resource kit: what every plugin's records need, written once.

Plugins import it through ``crm2_core.api``; see docs/plugins/authoring.md.
"""
