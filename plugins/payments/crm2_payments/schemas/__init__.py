"""The payments plugin's schemas."""
