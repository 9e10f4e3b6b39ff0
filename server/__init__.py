"""Nexgate server: the messaging-first social layer of the Nexgate commerce platform."""
