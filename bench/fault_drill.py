#!/usr/bin/env python3
"""Fault drill: the checkout stack under a mixed load while its parts fail, with the order,
payment, refund and ledger invariants checked in SQL after every fault (RELIABILITY.md has a
run's figures).

    .venv/bin/python bench/fault_drill.py [--help]

The drill is the package bench/drill/ (what one run does: bench/drill/__init__.py); this script is
its command line. Run by path, it has bench/ on sys.path, so the packages `drill` and `common`
import from there.
"""

import sys

from drill.main import main

if __name__ == "__main__":
    sys.exit(main())
