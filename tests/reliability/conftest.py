"""The reliability tests' summary lines (requests sent, failures by kind, faults survived) are
printed at the end of the run, so the README table can be filled from a real run."""

from __future__ import annotations

import pytest
from reliability_helpers import SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("reliability summary")
        for line in SUMMARY:
            terminalreporter.write_line(line)
