"""Identities and access: passwords, tokens, API keys, the caller of each request."""
