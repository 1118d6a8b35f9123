"""Opening the SQLite store: the lock, the checks, the schema, the rows to recover.

Before anything is written the file is locked (an exclusive ``flock`` on
``<store>.lock`` holding the owner's PID, shared with the writer process), and checked:
SQLite header, application id, schema version, ``PRAGMA quick_check``. Older schema
versions are migrated forward (:mod:`.sqlite_layout`); a file that cannot be read is never
rewritten. Every refusal is one line (:class:`~workerpool_tui.core.errors.StoreError`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..core.errors import StoreError, StoreLocked
from ..core.models import Task
from . import sqlite_layout as layout
from .sqlite_layout import SCHEMA_VERSION

SyncMode = Literal["normal", "full", "off"]

APPLICATION_ID = 0x77707475
"""``PRAGMA application_id`` of a workerpool-tui store ("wptu"): foreign databases are refused."""
_SQLITE_HEADER = b"SQLite format 3\x00"

_logger = logging.getLogger("workerpool_tui.store")


DEAD_OWNER_WAIT_S = 5.0
"""How long to wait for the lock while its recorded owner is dead (see :class:`_Lock`)."""


def _dead(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but somebody else's
        return False
    return False


class Lock:
    """An exclusive ``flock`` on ``<store>.lock`` with the holder's PID written in it.

    The writer process shares the lock, and the kernel drops it once both are gone, so a
    ``kill -9`` never leaves a stale lock behind. After a ``kill -9`` the writer still
    holds it for the moment it takes to die with its parent: a holder whose PID is no
    longer alive is waited for, briefly, rather than reported.
    """

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".lock")
        self._fd: int | None = None

    def acquire(self, db: Path) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"store {db}: cannot open {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + DEAD_OWNER_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode(errors="replace").split()
                holder = text[0] if text else ""
                if _dead(holder) and time.monotonic() < deadline:
                    time.sleep(0.01)  # its writer process is finishing; it goes at once
                    continue
                os.close(fd)
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise StoreLocked(f"store {db} is in use by {who}") from None
            except OSError as exc:
                os.close(fd)
                raise StoreError(f"store {db}: cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def fd(self) -> int:
        assert self._fd is not None, "not locked"
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _check_header(db: Path) -> None:
    try:
        with db.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"store {db} cannot be read: {exc.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(
            f"store {db} is not an SQLite database (corrupt or a different file);"
            " it was left untouched: move it away or set store.path"
        )


def _inspect(conn: sqlite3.Connection, db: Path) -> tuple[bool, int]:
    """Whether the file is new, and its schema version; refuses foreign and newer files."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    fresh = app_id == 0 and version == 0 and not tables
    if not fresh and app_id != APPLICATION_ID:
        raise StoreError(
            f"store {db} is an SQLite database of another program (application_id {app_id});"
            " it was left untouched: set store.path to another file"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {db} has schema version {version}, newer than this workerpool-tui"
            f" understands ({SCHEMA_VERSION}): upgrade workerpool-tui or use another store.path"
        )
    return fresh, int(version)


def _verdict(db: Path, check: list[Any]) -> None:
    """Refuse a store ``quick_check`` found damaged: one line naming the first problem
    (the check's rows hold several lines each); every problem goes to the log."""
    if check == ["ok"]:
        return
    problems = [
        line.strip()
        for row in check
        for line in str(row).splitlines()
        if line.strip() and not line.startswith("*** in database")
    ] or ["no details"]
    for problem in problems:
        _logger.error("store %s: quick_check: %s", db, problem)
    more = f"; {len(problems)} problems reported, each logged" if len(problems) > 1 else ""
    raise StoreError(
        f"store {db} is corrupt (quick_check: {problems[0]}{more});"
        " it was left untouched: move it away or restore a copy"
    )


class _QuickCheck:
    """``PRAGMA quick_check`` on a connection of its own, in a thread of its own.

    SQLite checks without holding the GIL, so at start-up the check runs on the second
    core while the loading thread decodes rows (a quarter of a second for 100,000 tasks).
    Used as a context manager: leaving it always waits for the thread.
    """

    def __init__(self, db: Path) -> None:
        self._db = db
        self._thread = threading.Thread(target=self._run, name="workerpool-store check")
        self.result: list[Any] = []
        self.error: sqlite3.Error | None = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._db, timeout=5.0)
            try:
                self.result = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self.error = exc

    def __enter__(self) -> _QuickCheck:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join()

    def raise_if_corrupt(self) -> None:
        if self.error is not None:
            raise self.error
        _verdict(self._db, self.result)


def _setup(conn: sqlite3.Connection, db: Path, sync: SyncMode, fresh: bool, version: int) -> None:
    """Switch to WAL, then create or migrate the schema; only once the checks have passed."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"store {db}: cannot switch to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {sync.upper()}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if fresh:
            conn.execute(layout.SCHEMA)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        else:
            layout.migrate(conn, version)
            if version < SCHEMA_VERSION:
                _logger.info("store %s migrated from schema %d to %d", db, version, SCHEMA_VERSION)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def open_sync(db: Path, sync: SyncMode, lock: Lock) -> list[Task]:
    """Lock, check, set up and load the store (in a thread: it blocks)."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"store {db}: cannot create {db.parent}: {exc.strerror}") from None
    lock.acquire(db)
    try:
        _check_header(db)
        try:
            conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreError(f"store {db} cannot be opened: {exc}") from None
        try:
            fresh, version = _inspect(conn, db)
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if not fresh and version == SCHEMA_VERSION and mode == "wal":
                # Nothing to write before loading: check and load at once. Rows of a
                # damaged file may fail to load; the check's verdict speaks first.
                failed: Exception | None = None
                with _QuickCheck(db) as check:
                    try:
                        tasks = layout.load(conn)
                    except Exception as exc:
                        failed = exc
                check.raise_if_corrupt()
                if failed is not None:
                    raise failed
                _setup(conn, db, sync, fresh, version)
            else:
                if not fresh:
                    _verdict(db, [r[0] for r in conn.execute("PRAGMA quick_check(5)")])
                _setup(conn, db, sync, fresh, version)
                tasks = layout.load(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(
                f"store {db} is corrupt or unreadable ({exc}); it was left untouched"
            ) from None
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as exc:
            conn.close()
            raise StoreError(
                f"store {db} holds a task it cannot read ({exc}); it was left untouched"
            ) from None
        except BaseException:
            conn.close()
            raise
    except BaseException:
        lock.release()
        raise
    conn.close()  # the writer process opens its own connection
    if tasks:
        _logger.info("store %s: %d task(s) loaded", db, len(tasks))
    return tasks
