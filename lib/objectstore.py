"""Where the store's files live: a local directory or an object-storage prefix (s3://bucket/prefix).

Both are reached through fsspec, with paths relative to the root ('dataset=bars/.../data.parquet').
Only what the media do differently is split out, into LocalFiles and ObjectFiles:

    replace a file   local: temporary file, fsync, rename    object storage: one PUT of the whole object
    keep writers     local: flock on <root>/.lock            object storage: <root>/.lock created only if
    apart                                                    absent (If-None-Match: *), holding its owner and
                                                             expiry; an expired one is taken over (If-Match)

A PUT is atomic on S3 (a GET returns the old or the new object, never a mix), and listing and
reading after a write are strongly consistent (AWS S3 since December 2020). S3 has no rename and
no flock, hence the lock object; it is a lease, so its holder must finish within LOCK_LEASE_S.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import posixpath
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from fsspec.core import url_to_fs
from fsspec.spec import AbstractFileSystem

from lib.config import is_url, storage_options

LOCK = ".lock"
TMP_SUFFIX = ".tmp"
LOCK_POLL_S = 0.05
LOCK_LEASE_S = 300.0  # an object lock older than this is a crashed writer's; one write takes seconds

Write = Callable[[BinaryIO], object]


class StoreError(RuntimeError):
    """The store cannot do what was asked; the message says why."""


def _s3fs_options(options: dict[str, str]) -> dict[str, object]:
    """s3fs's names for the settings polars gets as `options`, so both reach the same endpoint.
    No listings cache: another writer's objects must show up at once."""
    return {
        "key": options.get("aws_access_key_id"),
        "secret": options.get("aws_secret_access_key"),
        "token": options.get("aws_session_token"),
        "endpoint_url": options.get("aws_endpoint_url"),
        "client_kwargs": {"region_name": options.get("aws_region")},
        "use_listings_cache": False,
    }


class Files(ABC):
    """The files under one root, addressed by '/'-separated paths relative to it."""

    def __init__(self, root: Path | str, fs: AbstractFileSystem, base: str, options: dict[str, str] | None) -> None:
        self.root = root  # as given: a Path, or the URL
        self.fs = fs
        self.base = base.rstrip("/")  # the root as fsspec names it (no protocol)
        self.storage_options = options  # for polars' scans; None for local files

    def _full(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _rel(self, full: str) -> str:
        return full[len(self.base) + 1 :]

    @abstractmethod
    def url(self, rel: str) -> str:
        """What polars opens: a local path or an s3:// URL."""

    @abstractmethod
    def location(self, rel: str) -> Path | str:
        """What people are shown (and local callers can open): a Path, or the URL."""

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self._full(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self._full(rel))

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching `pattern`, sorted."""
        return sorted(self._rel(p) for p in self.fs.glob(self._full(pattern)))

    def find(self, rel: str) -> list[str]:
        """Every file under `rel`, sorted."""
        return sorted(self._rel(p) for p in self.fs.find(self._full(rel)))

    def move(self, rel: str, to: str) -> None:
        """Rename on disk; copy then delete on object storage (not atomic, but nothing is lost)."""
        self.fs.makedirs(posixpath.dirname(self._full(to)), exist_ok=True)
        self.fs.mv(self._full(rel), self._full(to))

    def version(self, rel: str) -> str | None:
        """Changes whenever the file does (a hash of its size and mtime or ETag); None if absent."""
        try:
            return self.fs.ukey(self._full(rel))
        except FileNotFoundError:
            return None

    @abstractmethod
    def put(self, rel: str, write: Write) -> None:
        """Replace `rel` with what `write(handle)` writes, atomically: readers see the old or new file."""

    def remove_leftovers(self, pattern: str) -> None:
        """Delete temporary files a killed writer left under `pattern` (caller holds the lock); a
        single PUT leaves none, so only local disk has any."""

    @abstractmethod
    def lock(self, timeout_s: float, name: str = LOCK) -> AbstractContextManager[None]:
        """Hold the root's exclusive lock `name` (the write lock by default); StoreError after
        `timeout_s` of waiting, naming who holds it."""


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalFiles(Files):
    """A local directory: atomic rename after fsync, and flock."""

    def url(self, rel: str) -> str:
        return self._full(rel)

    def location(self, rel: str) -> Path | str:
        return Path(self._full(rel))

    def put(self, rel: str, write: Write) -> None:
        path = Path(self._full(rel))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(str(path.parent))

    def remove_leftovers(self, pattern: str) -> None:
        for tmp in Path(self.base).glob(f"{pattern}/*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)

    @contextmanager
    def lock(self, timeout_s: float, name: str = LOCK) -> Iterator[None]:
        """An flock on <root>/<name>, which holds its holder's pid: the kernel drops it when the
        holder dies."""
        Path(self.base).mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        with open(self._full(name), "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "unknown"
                        raise StoreError(f"{name} on {self.root} is held by pid {holder}; gave up after "
                                         f"{timeout_s:.0f} s") from None
                    time.sleep(LOCK_POLL_S)
            try:
                handle.truncate(0)
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _lease(owner: str) -> bytes:
    return json.dumps({"owner": owner, "expires": time.time() + LOCK_LEASE_S}).encode()


class ObjectFiles(Files):
    """An object-storage prefix: one PUT per file, and a lock object with a lease."""

    def url(self, rel: str) -> str:
        return self.fs.unstrip_protocol(self._full(rel))

    def location(self, rel: str) -> Path | str:
        return self.url(rel)

    def put(self, rel: str, write: Write) -> None:
        buffer = io.BytesIO()
        write(buffer)
        self.fs.pipe_file(self._full(rel), buffer.getvalue())

    def _holder(self, name: str) -> tuple[dict, str] | None:
        """The lock object's content and ETag, or None if nobody holds it."""
        try:
            info = self.fs.info(self._full(name))
            return json.loads(self.read_bytes(name)), info["ETag"]
        except FileNotFoundError:
            return None

    def _try_lock(self, owner: str, name: str) -> dict | None:
        """Create the lock object if absent, or replace an expired one; None on success, else its holder.

        Both PUTs are conditional, so of two writers racing only one succeeds."""
        try:
            self.fs.pipe_file(self._full(name), _lease(owner), mode="create")
            return None
        except FileExistsError:
            pass
        held = self._holder(name)
        if held is None:  # released between the two requests
            return self._try_lock(owner, name)
        holder, etag = held
        if holder.get("expires", 0) > time.time():
            return holder
        try:
            self.fs.pipe_file(self._full(name), _lease(owner), IfMatch=etag)
            return None
        except OSError:  # 412 Precondition Failed: another writer took it over first
            return holder

    @contextmanager
    def lock(self, timeout_s: float, name: str = LOCK) -> Iterator[None]:
        """A lease on <root>/<name>; a crashed holder's lease is taken over once it expires."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + timeout_s
        while (holder := self._try_lock(owner, name)) is not None:
            if time.monotonic() > deadline:
                until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("expires", 0)))
                raise StoreError(
                    f"the lock on {self.root} is held by {holder.get('owner')} (lease until {until}); "
                    f"gave up after {timeout_s:.0f} s"
                )
            time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            held = self._holder(name)
            if held is not None and held[0].get("owner") == owner:  # not if our lease expired and was taken
                self.fs.rm_file(self._full(name))


def files_at(root: Path | str) -> Files:
    """The files under `root`: a local directory, or an object-storage URL reached with the
    endpoint and credentials of the standard AWS environment variables."""
    if not is_url(root):
        fs, base = url_to_fs(str(root))
        return LocalFiles(Path(root), fs, base, None)
    options = storage_options()
    fs, base = url_to_fs(str(root), **_s3fs_options(options))
    return ObjectFiles(str(root).rstrip("/"), fs, base, options)
