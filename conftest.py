"""Slow national-scale checks run in CI (CI=true) or when asked (DCSIM_SLOW=1); the default
suite stays fast for everyday work. The test command is the same in both cases."""

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CI") == "true" or os.environ.get("DCSIM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: runs in CI (CI=true) or with DCSIM_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
