"""Data access: the models, the database policy and every statement the app runs."""
