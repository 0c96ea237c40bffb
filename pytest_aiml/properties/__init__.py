"""Hypothesis property checks on the preprocessing functions a repository declares.

``spec`` parses the declarations, ``resolve`` imports the named functions, and
``checks`` runs one property and returns its result. The strategies that
generate inputs are public in :mod:`pytest_aiml.strategies`. Nothing here imports
pytest.
"""
