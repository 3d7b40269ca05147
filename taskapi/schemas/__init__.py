"""Marshmallow schemas: they validate every request body and shape every response."""
