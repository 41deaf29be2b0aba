"""The lock-mutation check (`make mutants`): every lock the shop's money depends on is removed, one
at a time, from a copy of the tree, and the tests named to catch it must then fail.

    python -m tests.mutants [--list] [--only NAME_PART] [--every-test] [--repeat N]

The mutations live next to the code they change, in each app's `mutations.py` (a `MUTATIONS` list
of `core.mutations.Mutation`), so a new lock gets its entry where it is written. Every `find` must
occur exactly once in its file, or the check stops before running anything: the list cannot rot
silently when the code moves.

The real tree is never changed: its files (tracked or new, not ignored, as they are in the working
tree) are copied to a temporary directory, and each mutation is written there, tested and undone.
The tests run with pytest on the server of DATABASE_URL (or TEST_DATABASE_URL), in a test
database of this run's own, `<database>_mutants_<pid>`, created once, reused by every mutant and
dropped at the end. The named tests first run unmutated: a check whose tests fail anyway proves
nothing.
"""

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.mutations import Mutation

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
# Per mutant: a caught mutant fails fast (-x); one that hangs is stopped and reported.
MUTANT_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Run:
    failed: list[str]  # the tests that failed, in the order they ran
    note: str = ""  # why the run proves nothing (a timeout, a collection error)


@dataclass(frozen=True)
class Verdict:
    mutation: Mutation
    runs: list[Run]
    seconds: float

    @property
    def caught(self) -> bool:
        return all(run.failed and not run.note for run in self.runs)

    def describe(self) -> str:
        """The tests that failed (with how many runs each failed in, over several), or SURVIVED."""
        counted = [run for run in self.runs if not run.note]
        failures = Counter(test for run in counted for test in run.failed)
        shown = [test + (f" ({failures[test]}/{len(self.runs)})" if len(self.runs) > 1 else "") for test in failures]
        notes = "; ".join(sorted({run.note for run in self.runs if run.note}))
        return (", ".join(shown) if self.caught else "SURVIVED") + (f" [{notes}]" if notes else "")


def tree_files() -> list[str]:
    # Tracked files and new ones not yet added (not the ignored: .venv, var/, node_modules).
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(command, cwd=ROOT, check=True, capture_output=True).stdout
    return [name for name in listed.decode().split("\0") if name]


def collect(files: list[str]) -> list[Mutation]:
    """Every app's MUTATIONS, from the tree's `mutations.py` files outside tests/."""
    mutations: list[Mutation] = []
    for name in sorted(f for f in files if Path(f).name == "mutations.py" and not f.startswith("tests/")):
        spec = importlib.util.spec_from_file_location(f"mutations_of_{name.replace('/', '_')[:-3]}", ROOT / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        mutations.extend(getattr(module, "MUTATIONS", []))
    names = [m.name for m in mutations]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise SystemExit(f"mutation names must be unique: {sorted(duplicated)}")
    return mutations


def check_applicable(mutations: list[Mutation]) -> None:
    """Every `find` occurs exactly once, and every mutation names a test: else stop, loudly."""
    problems = []
    for mutation in mutations:
        path = ROOT / mutation.path
        text = path.read_text() if path.is_file() else None
        count = text.count(mutation.find) if text is not None else 0
        if text is None:
            problems.append(f"{mutation.name}: {mutation.path} does not exist")
        elif count != 1:
            problems.append(f"{mutation.name}: the text to change occurs {count} times in {mutation.path}, not once")
        if not mutation.caught_by:
            problems.append(f"{mutation.name}: names no test to catch it")
    if problems:
        listed = "\n  ".join(problems)
        raise SystemExit(f"Mutations that no longer match the code (fix the entry next to the code):\n  {listed}")


def copy_tree(files: list[str], target: Path) -> None:
    for name in files:
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree but still tracked
            continue
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


def database_urls() -> tuple[str, str]:
    """(the URL the tests start from, the name of this run's test database)."""
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    base = urlsplit(url).path.lstrip("/") or "test"
    return url, f"{base}_mutants_{os.getpid()}"


def write_settings(tree: Path, test_database: str) -> None:
    # The test database's name is this run's own (pytest-django would use test_<name>, shared with
    # any suite running on the same server).
    (tree / "mutants_settings.py").write_text(
        "from core.settings_test import *  # noqa: F403\n\n"
        f'DATABASES["default"]["TEST"] = {{"NAME": {test_database!r}}}  # noqa: F405\n'
    )


def run_pytest(
    tree: Path, tests: list[str], *, create_db: bool, stop_first: bool, report: Path, timeout: float
) -> tuple[int | None, str]:
    """Runs the tests in `tree`; returns (exit code or None on timeout, output)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reuse-db"]
    command += ["--create-db"] if create_db else []
    command += ["-x"] if stop_first else []
    command += [f"--junitxml={report}", *tests]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mutants_settings", "PYTHONDONTWRITEBYTECODE": "1"}
    env["DATABASE_URL"] = database_urls()[0]
    report.unlink(missing_ok=True)
    process = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return None, process.communicate()[0]
    except BaseException:  # Ctrl-C: pytest runs in a session of its own, so it would not hear it
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def run_mutant(tree: Path, mutation: Mutation, *, every_test: bool, report: Path) -> Run:
    """Applies the mutation to the copy, runs its tests, and undoes it whatever happens."""
    path = tree / mutation.path
    original = path.read_text()
    path.write_text(original.replace(mutation.find, mutation.replace, 1))
    try:
        tests = list(mutation.caught_by)
        code, output = run_pytest(
            tree, tests, create_db=False, stop_first=not every_test, report=report, timeout=MUTANT_TIMEOUT_SECONDS
        )
    finally:
        path.write_text(original)
    if code is None:
        return Run(failed_tests(report), note=f"timed out after {MUTANT_TIMEOUT_SECONDS} s: make the test fail instead")
    if code not in (0, 1):  # collection or usage error: the mutant never ran
        print(output)
        return Run(failed_tests(report), note=f"pytest exited {code}")
    return Run(failed_tests(report))


def failed_tests(report: Path) -> list[str]:
    """Node-id-like names of the tests that failed or errored, in the order they ran."""
    if not report.exists():
        return []
    failed = []
    for case in ElementTree.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").replace(".", "/")
            failed.append(f"{module}.py::{case.get('name')}" if module else case.get("name", "?"))
    return failed


def drop_database(url: str, name: str) -> None:
    import psycopg
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_table(verdicts: list[Verdict]) -> None:
    width = max(len(v.mutation.name) for v in verdicts)
    print(f"\n{'mutation'.ljust(width)}  {'seconds':>7}  caught by")
    for verdict in verdicts:
        print(f"{verdict.mutation.name.ljust(width)}  {verdict.seconds:7.1f}  {verdict.describe()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    parser.add_argument("--every-test", action="store_true", help="run every named test, not up to the first failure")
    parser.add_argument("--repeat", type=int, default=1, help="run each mutant this many times; all must be caught")
    args = parser.parse_args(argv)
    files = tree_files()
    mutations = collect(files)
    check_applicable(mutations)
    if args.only:
        mutations = [m for m in mutations if args.only in m.name]
    if args.list:
        for mutation in mutations:
            print(f"{mutation.name}  [{mutation.path}]\n    " + "\n    ".join(mutation.caught_by))
        return 0
    if not mutations:
        raise SystemExit("no mutation to run")
    url, test_database = database_urls()
    started = time.monotonic()
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as temporary:
        tree = Path(temporary) / "tree"
        copy_tree(files, tree)
        write_settings(tree, test_database)
        report = Path(temporary) / "report.xml"
        try:
            tests = list(dict.fromkeys(test for m in mutations for test in m.caught_by))
            print(f"Unmutated: the {len(tests)} tests that catch {len(mutations)} mutations", flush=True)
            code, output = run_pytest(
                tree, tests, create_db=True, stop_first=False, report=report, timeout=4 * MUTANT_TIMEOUT_SECONDS
            )
            if code != 0:
                print(output)
                raise SystemExit("The tests fail (or were not found) without any mutation: fix them first.")
            for mutation in mutations:
                begun = time.monotonic()
                runs = [
                    run_mutant(tree, mutation, every_test=args.every_test, report=report) for _ in range(args.repeat)
                ]
                verdict = Verdict(mutation, runs, time.monotonic() - begun)
                print(f"  {mutation.name}: {verdict.describe()} ({verdict.seconds:.1f} s)", flush=True)
                verdicts.append(verdict)
        finally:
            drop_database(url, test_database)
    print_table(verdicts)
    caught = sum(verdict.caught for verdict in verdicts)
    print(f"\n{caught} of {len(verdicts)} mutations caught in {time.monotonic() - started:.0f} s")
    return 0 if caught == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
