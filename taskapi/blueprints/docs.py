"""The OpenAPI document and an interactive docs page, served from the package itself."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from ..http.openapi import current_spec, documented, success

bp = Blueprint("docs", __name__, url_prefix="/api")

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>taskapi API docs</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/api/openapi.json",
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
@documented(responses={200: success({"type": "object"})})
def openapi():
    """The OpenAPI 3 document of this API."""
    return current_spec()


@bp.get("/docs")
@documented(responses={200: {"description": "Swagger UI", "content": {"text/html": {}}}})
def docs_page():
    """Interactive API documentation (Swagger UI, no external requests)."""
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/<path:filename>")
@documented(responses={200: success(description="A Swagger UI file")}, errors=(404,))
def docs_asset(filename: str):
    """A Swagger UI file, from the swagger-ui-bundle package."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
