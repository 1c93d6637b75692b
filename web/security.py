"""What every response carries and every redirect obeys: security headers, a size limit,
and `next` targets that stay on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

# No script at all runs in the UI; the few inline style attributes are allowed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def safe_next(target: str | None, fallback: str = "/") -> str:
    """`target` if it is a path on this site, else `fallback`.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    "/\\t/evil.example" or "/\\\\evil.example" would leave the site: any control
    character, whitespace or backslash refuses the target.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def _headers(app: Flask):
    hsts = app.config.get("SESSION_COOKIE_SECURE")

    def add(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)  # a page may set a stricter one
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        if hsts:  # only behind HTTPS, where the cookies are marked Secure
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return add


def register(app: Flask) -> None:
    app.after_request(_headers(app))
