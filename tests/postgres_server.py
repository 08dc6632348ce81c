"""A real PostgreSQL server in a temporary folder, for tests: its own cluster, port and socket, so tests never
depend on (or disturb) a system server, and what they check is PostgreSQL's real behaviour, not a fake's."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Literal

from helpers import free_port

StopMode = Literal["fast", "immediate"]

_MISSING = "PostgreSQL's server binaries (initdb, pg_ctl) were not found: run `make setup` (it installs postgresql-15)."

# Speed over durability against power cuts (a test cluster is thrown away), but a committed transaction
# must survive the server being killed (tests stop it with `immediate`): so no fsync, yet synchronous commit,
# which hands the WAL to the operating system before a commit returns.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "200",
}


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: ``pg_config --bindir`` when pg_config is on PATH (and that folder
    really has them: libpq-dev's pg_config answers /usr/bin without any server), else the newest
    /usr/lib/postgresql/*/bin (Debian's layout, never on PATH)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass

    def version(path: str) -> tuple[int, ...]:
        major = Path(path).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", major)) or (0,)

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise RuntimeError(_MISSING)


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can reach ``path``: every existing ancestor must grant it search (x) permission."""
    groups = {user.pw_gid} | set(os.getgrouplist(user.pw_name, user.pw_gid))
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


class PostgresServer:
    """One PostgreSQL cluster under ``folder`` (``data/`` for the cluster, ``postgres.log``, the unix socket),
    listening on 127.0.0.1 on a port chosen once and kept across restarts, so URLs handed out stay valid.

    As root, PostgreSQL refuses to run, so initdb and pg_ctl run as the ``postgres`` user, which then owns the
    folder; when the given folder's parents are closed to that user (pytest's /tmp/pytest-of-root is 0700), the
    server lives in a fresh /tmp/pg-* folder instead, removed by :meth:`stop_and_remove`."""

    def __init__(self, folder: Path) -> None:
        self.bindir: Path = find_bindir()
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a `postgres` user to run PostgreSQL as: run `make setup` "
                                   "(installing postgresql-15 creates it).") from None
            if not _traversable_by(Path(folder).resolve(), self._user):
                folder = Path(tempfile.mkdtemp(prefix="pg-"))
                folder.chmod(0o755)
        self.folder: Path = Path(folder).resolve()
        self.data: Path = self.folder / "data"
        self.log: Path = self.folder / "postgres.log"
        self.port: int = 0
        self._atexit_registered = False

    # -- running the binaries -------------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one of PostgreSQL's programs, as the postgres user when we are root. ``user=``/``group=`` switch
        identity inside the forked child (no preexec_fn, which is unsafe with threads; no dependency on
        runuser/su and their PAM setup). PG* variables of the caller are dropped so they cannot redirect it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
            env["HOME"] = self._user.pw_dir
            env["USER"] = env["LOGNAME"] = self._user.pw_name
        # stdin/stdout never inherited by the postmaster: pg_ctl -l sends its output to the log file.
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.folder, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kwargs)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _initdb(self) -> None:
        """Trust authentication (a loopback-only throwaway cluster), UTF8, C locale (present everywhere);
        --no-sync because nothing here must survive a crash of the machine."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._chown(self.folder)
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--locale=C", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        conf = self.data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write("\n# Written by tests/postgres_server.py\ninclude 'test_server.conf'\n")

    def _write_settings(self) -> None:
        settings = dict(_SETTINGS, port=str(self.port), unix_socket_directories=str(self.folder))
        conf = self.data / "test_server.conf"
        quoted = {k: v.replace("'", "''") for k, v in settings.items()}  # every value a quoted string: always valid
        conf.write_text("".join(f"{k} = '{v}'\n" for k, v in quoted.items()), encoding="utf-8")
        self._chown(conf)

    # -- public API -----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server and wait until it accepts connections; the first call creates the cluster and picks
        the port. A port taken between choosing and binding it is retried with another, on the first start only
        (afterwards the port is part of the URLs already handed out)."""
        if self.running:
            return
        if not self.data.exists():
            self._initdb()
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = free_port()
            self._write_settings()
            done = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log))
            if done.returncode == 0:
                break
            log = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
            if "could not bind" not in log or attempt == attempts - 1:
                raise RuntimeError(f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                                   f"--- {self.log} (end) ---\n{log[-4000:]}")
        if not self._atexit_registered:
            # A test run that ends without stop_and_remove() (an interrupted session) must not leave it running.
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (quoted as an identifier) and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` even while clients are still connected to it (WITH (FORCE) ends them)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server: ``fast`` ends clients and shuts down cleanly, ``immediate`` aborts (the next start
        runs crash recovery), which is how a test simulates PostgreSQL dying."""
        if mode not in ("fast", "immediate"):
            raise ValueError(f"stop mode must be 'fast' or 'immediate', not {mode!r}")
        if not self.running:
            return
        done = self._run("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)
        if done.returncode != 0 and self.running:
            raise RuntimeError(f"pg_ctl stop failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def restart(self) -> None:
        """Stop (fast) and start again on the same port, with the same data."""
        self.stop("fast")
        self.start()

    def stop_and_remove(self) -> None:
        """Stop the server (immediately if a fast stop fails) and delete its folder."""
        try:
            self.stop("fast")
        except (RuntimeError, subprocess.SubprocessError):
            self.stop("immediate")
        if self._atexit_registered:
            atexit.unregister(self._stop_at_exit)
            self._atexit_registered = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def _stop_at_exit(self) -> None:
        try:
            self.stop("immediate")
        except Exception:
            pass
