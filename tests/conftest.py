"""Shared test setup.

pytester's in-process runs restore ``sys.modules`` after each run, so a module first
imported inside a run is imported again by the next one. Importing the heavy ones
here, once, keeps each in-process run of the plugin fast.
"""

import hypothesis  # noqa: F401  (the hypothesis pytest plugin imports it at every session end)
import libcst  # noqa: F401

import pytest_aiml.session  # noqa: F401
