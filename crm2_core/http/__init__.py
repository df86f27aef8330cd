"""The HTTP shell: the app factory and the conventions every plugin's routes share."""
