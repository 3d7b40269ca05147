"""Who is calling: bearer tokens and their keys, the users they name, rate limits."""
