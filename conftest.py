"""Root conftest: the test suite uses pytester to run pytest-aiml on sample repositories."""

collect_ignore = ["fixtures", "benchmarks"]
