"""Placeholder: rules of this module are being written."""

RULES: tuple = ()
