"""Web Push reminders (docs/api.md, "Reminders by Web Push"): the endpoint rule,
sending, the dispatcher. The VAPID key and the push service hosts are settings
(taskapi.config).

``endpoints`` is light and serves the web side too; ``sender`` and
``dispatcher`` load pywebpush, requests and aiohttp, and only the
``send-reminders`` process imports them.
"""
