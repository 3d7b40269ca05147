"""HTTP plumbing the blueprints share: bodies, ETags, URLs, CORS, logs, the OpenAPI document."""
