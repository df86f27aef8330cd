"""Google Drive: the OAuth 2.0 grant (authorization code + PKCE) and the ``gdrive`` backend."""
