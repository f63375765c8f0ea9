"""Wires the stories feature into the app."""

from server.feature import Feature

feature = Feature(name="stories")
