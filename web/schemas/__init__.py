"""Request and answer schemas of the JSON API, one module per concern.

Each is declared once and used twice: to validate what comes in
(web/api/endpoint.py) and to write /api/v1/openapi.json (web/api/spec.py).
"""
