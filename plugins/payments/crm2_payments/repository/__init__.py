"""The payments plugin's repository."""
