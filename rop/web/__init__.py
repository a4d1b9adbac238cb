"""The web report: app factory, routes, templates and vendored static assets.

Importing this package builds nothing; call :func:`create_app` and :func:`serve`.
"""

from rop.web.app import create_app, serve, serve_in_thread

__all__ = ["create_app", "serve", "serve_in_thread"]
