"""Ephemera's shared server: settings, Redis, auth, errors, the HTTP/WebSocket plumbing."""
