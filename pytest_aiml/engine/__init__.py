"""The analysis engine: discovery, rules, findings, inventory. Imports nothing from pytest."""
