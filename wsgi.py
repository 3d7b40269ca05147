"""The WSGI entry point: ``gunicorn wsgi:app``."""

from taskapi import create_app

app = create_app()
