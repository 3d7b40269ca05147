"""Web Push reminders (contract 4.10): keys, endpoint rules, sending, the dispatcher.

``vapid`` and ``endpoints`` are light (``cryptography`` and the standard
library) and serve the web side too; ``sender`` and ``dispatcher`` load
pywebpush, requests and aiohttp, and only the ``send-reminders`` process
imports them.
"""
