"""Who may use a hosted instance: password hashes, the e-mail allowlist, roles, attempt limits.

Pure: no streamlit, no environment. lib.ui asks these questions on behalf of the login view.

Password hashes are scrypt (RFC 7914) strings, safe to paste into TOML:
    scrypt$<N>$<r>$<p>$<salt, urlsafe base64>$<key, urlsafe base64>
Verification takes N, r and p from the string (so the constants below can be raised later without
invalidating old hashes) but refuses values outside sane bounds, and never raises on a bad string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lib.config import Access

SCHEME = "scrypt"
SCRYPT_N = 2**15  # CPU/memory cost: 128 * N * r bytes = 32 MiB per verification
SCRYPT_R = 8  # block size
SCRYPT_P = 1  # parallelism
SALT_BYTES = 16
KEY_BYTES = 32
MAX_MEMORY = 256 * 2**20  # a stored hash needing more (128 * N * r bytes) is refused, not computed
MAX_P = 16
MIN_SALT_BYTES = 8

VIEWER = "viewer"  # browse and export
ADMIN = "admin"  # also refresh, import and upload from the Data page

PASSWORD_VIEWER = "desk"  # the name shown for whoever signs in with the shared password
PASSWORD_ADMIN = "desk admin"  # ... and with the admin password

DESK_MAX_FAILURES = 30  # failed passwords from all sessions together, per window, before everyone waits


@dataclass(frozen=True)
class Identity:
    """A signed-in user: who (an e-mail, or the desk's shared name), their role, and how they signed in."""

    name: str
    role: str
    method: str  # "oidc", "password" or "local"

    @property
    def can_write(self) -> bool:
        """True if this user may refresh, import and upload (write to the cache)."""
        return self.role == ADMIN


LOCAL = Identity("local user", ADMIN, "local")  # local mode: no login, full access


# --- passwords -----------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode unpadded urlsafe base64 as _b64 writes it; binascii.Error or ValueError on anything else."""
    if not text or not text.isascii():
        raise ValueError("empty or non-ASCII base64")
    raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64(raw) != text:  # e.g. a truncated string that still decodes
        raise ValueError("not canonical base64")
    return raw


def _secret_bytes(password: str) -> bytes:
    """The password as bytes; NFKC first, so the same visible password always gives the same bytes."""
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, key_bytes: int) -> bytes:
    # OpenSSL refuses more than 32 MiB unless told; this is what it needs (V and B) plus slack.
    maxmem = 128 * r * (n + 2 + p) + 2**20
    return hashlib.scrypt(_secret_bytes(password), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=key_bytes)


def hash_password(
    password: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P,
) -> str:
    """The scrypt hash string of `password` (a fresh random salt unless one is given).

    Raises ValueError for an empty password or parameters `verify_password` would refuse."""
    if not isinstance(password, str) or not password:
        raise ValueError("the password must be a non-empty string")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not _acceptable(n, r, p, salt):
        raise ValueError(f"scrypt parameters out of bounds: N={n}, r={r}, p={p}, salt of {len(salt)} bytes")
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p, KEY_BYTES))}"


def _acceptable(n: int, r: int, p: int, salt: bytes) -> bool:
    """True for parameters worth computing: N a power of two, memory within MAX_MEMORY, a real salt."""
    power_of_two = 1 < n and n & (n - 1) == 0
    return power_of_two and 1 <= r and 128 * n * r <= MAX_MEMORY and 1 <= p <= MAX_P and len(salt) >= MIN_SALT_BYTES


@dataclass(frozen=True)
class ScryptHash:
    """A parsed hash string: the scrypt parameters, the salt and the derived key."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes


def parse_hash(stored: object) -> ScryptHash | None:
    """The parts of a hash string, or None if it is not one this module would accept."""
    if not isinstance(stored, str):
        return None
    parts = stored.strip().split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4] if x.isascii() and x.isdigit())
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not _acceptable(n, r, p, salt) or len(key) != KEY_BYTES:
        return None
    return ScryptHash(n, r, p, salt, key)


def verify_password(password: object, stored: object) -> bool:
    """True if `password` matches the hash string `stored`; False for a wrong password, an empty
    one, or a malformed hash (never raises). Compares in constant time."""
    parsed = parse_hash(stored)
    if parsed is None or not isinstance(password, str) or not password:
        return False
    try:
        candidate = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, KEY_BYTES)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, parsed.key)


def password_identity(password: str, access: Access) -> Identity | None:
    """Whoever `password` signs in as: the admin password first, then the desk's shared one."""
    if access.admin_password_hash and verify_password(password, access.admin_password_hash):
        return Identity(PASSWORD_ADMIN, ADMIN, "password")
    if access.password_hash and verify_password(password, access.password_hash):
        return Identity(PASSWORD_VIEWER, VIEWER, "password")
    return None


# --- e-mail allowlist and roles ------------------------------------------------------------------


def normalise_email(text: object) -> str | None:
    """'Alice@Desk.Example ' -> 'alice@desk.example'; None unless it is exactly one local part and
    one domain (no spaces, no second '@', a dot-separated domain without empty labels)."""
    if not isinstance(text, str):
        return None
    email = text.strip().casefold()
    local, at, domain = email.partition("@")
    if not at or not local or "@" in domain or any(c.isspace() for c in email):
        return None
    return email if normalise_domain(domain) == domain else None


def normalise_domain(text: object) -> str | None:
    """'@Desk.Example' or 'desk.example.' -> 'desk.example'; None if not a plausible domain."""
    if not isinstance(text, str):
        return None
    domain = text.strip().casefold().removeprefix("@").removesuffix(".")
    labels = domain.split(".")
    if len(labels) < 2 or any(not label or label.startswith("-") or label.endswith("-") for label in labels):
        return None
    return domain if all(c.isalnum() or c in "-." for c in domain) else None


def is_allowed(email: object, emails: Iterable[str], domains: Iterable[str]) -> bool:
    """True if `email` is listed, or its domain is listed exactly (case-insensitive).

    Subdomains are not implied: 'desk.example' does not admit 'x@eu.desk.example', and never
    'x@desk.example.evil.test'. List each (sub)domain you trust."""
    address = normalise_email(email)
    if address is None:
        return False
    domain = address.rpartition("@")[2]
    return address in {normalise_email(e) for e in emails} or domain in {normalise_domain(d) for d in domains}


def role_for(email: str, admins: Iterable[str]) -> str:
    """ADMIN if `email` is in the admins list (e-mails only, case-insensitive), else VIEWER."""
    address = normalise_email(email)
    return ADMIN if address is not None and address in {normalise_email(a) for a in admins} else VIEWER


def oidc_identity(user: Mapping[str, object], access: Access) -> Identity | None:
    """The identity of a user the identity provider signed in (st.user as a dict), or None if
    they are not allowed here: not signed in, no usable e-mail, an e-mail the provider says is
    unverified, or not in the allowlist (admins count as allowed)."""
    if user.get("is_logged_in") is not True or user.get("email_verified") is False:
        return None
    email = normalise_email(user.get("email"))
    if email is None or not is_allowed(email, (*access.allowed_emails, *access.admins), access.allowed_domains):
        return None
    return Identity(email, role_for(email, access.admins), "oidc")


# --- attempt limits ------------------------------------------------------------------------------


class AttemptLimiter:
    """At most `max_failures` failed attempts per key within any `window_s` seconds.

    Thread-safe (every Streamlit session runs in its own thread); the clock is injectable for
    tests. Keys are whatever the caller limits by: a session, or one key for the whole desk.
    """

    MAX_KEYS = 10_000  # beyond this, the keys idle longest are forgotten (bounded memory)

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError(f"need max_failures >= 1 and window_s > 0, got {max_failures}, {window_s}")
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may try again (0.0: it may try now)."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, times[-self.max_failures] + self.window_s - now)

    def failed(self, key: str) -> None:
        """Record a failed attempt by `key`."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            times.append(now)
            self._failures.pop(key, None)
            self._failures[key] = times  # re-inserted: the dict stays ordered by last failure
            while len(self._failures) > self.MAX_KEYS:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        """Forget `key`'s failures (a correct password)."""
        with self._lock:
            self._failures.pop(key, None)
