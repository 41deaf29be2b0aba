"""What a lock mutation is: a lock (or a check that stands in for one) removed on purpose, to prove
that some test fails without it. Each app lists its own next to the code they change
(`billing/mutations.py`, `orders/mutations.py`); `make mutants` (tests/mutants.py) applies them
one at a time to a copy of the tree and runs the tests named to catch them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # the file changed, relative to the repository's root
    find: str  # exact text, found exactly once in `path`, or the check fails loudly
    replace: str
    caught_by: tuple[str, ...]  # pytest node ids; at least one must fail with the mutation applied
    why: str = ""  # what the lock prevents, in a sentence
