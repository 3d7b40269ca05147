"""Real servers for the tests and the benchmarks: databases, gunicorn, nginx, PgBouncer."""
