"""Wires the rooms feature into the app."""

from server.feature import Feature

feature = Feature(name="rooms")
