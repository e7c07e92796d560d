"""Reports, at the end of a run, how many random programs and derivatives the fuzz tests
checked (the counts in tests/fuzz/programs.py)."""
from .programs import COUNTS


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    programs = sum(n for key, n in COUNTS.items() if key != "derivative checks")
    parts = ", ".join(f"{n} {key}" for key, n in sorted(COUNTS.items()) if key != "derivative checks")
    terminalreporter.write_sep("-", f"fuzz: {programs} programs ({parts}), "
                                    f"{COUNTS['derivative checks']} derivative checks")
