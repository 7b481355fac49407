"""The web app's security headers, one definition for CloudFront (``infra.constructs.frontend``)
and the local gateway (``infra.local.gateway``), so the browser tests run under the policy
the cloud serves."""

from __future__ import annotations

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"
REFERRER_POLICY = "strict-origin-when-cross-origin"


def content_security_policy(*, connect: list[str], media: list[str], forms: list[str]) -> str:
    """The app's CSP: its own scripts and styles only, network calls to the named hosts only."""
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # style attributes only (no <style> elements): React's and the annotators' inline
        # geometry (positions, sizes, colours of regions) is set as style attributes
        "style-src-attr": ["'unsafe-inline'"],
        "font-src": ["'self'"],
        "manifest-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "img-src": ["'self'", "data:", "blob:", *media],
        "media-src": ["'self'", "blob:", *media],
        "connect-src": ["'self'", *connect, *media],
        "form-action": ["'self'", *forms],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def page_headers(csp: str) -> dict[str, str]:
    """Every header CloudFront's response headers policy adds, but HSTS (local is plain HTTP)."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": REFERRER_POLICY,
        "Permissions-Policy": PERMISSIONS_POLICY,
        "Cross-Origin-Opener-Policy": "same-origin",
    }
