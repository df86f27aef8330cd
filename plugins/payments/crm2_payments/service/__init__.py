"""The payments plugin's service."""
