"""Wires the media relay into the app (registers services["media"])."""

from server.feature import Feature

feature = Feature(name="media")
