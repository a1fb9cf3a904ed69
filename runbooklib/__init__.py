"""s2s-runbooks: set up, prove and audit Microsoft server-to-server (OAuth 2.0) trusts."""

__version__ = "0.1.0"
