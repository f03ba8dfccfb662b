"""lib.auth and the access settings: password hashes, the allowlist, roles, attempt limits."""

from __future__ import annotations

import io
import re

import pytest

from lib import auth
from lib.auth import ADMIN, VIEWER, AttemptLimiter, Identity, hash_password, is_allowed, parse_hash, verify_password
from lib.config import ACCESS_KEYS, HOSTED, LOCAL, PROJECT_ROOT, Access, load_access

FAST_N = 2**10  # tests hash with a small cost; verification reads N from the string either way
SALT = bytes(range(16))


def fast_hash(password: str) -> str:
    return hash_password(password, n=FAST_N)


# --- passwords -----------------------------------------------------------------------------------


def test_default_parameters_round_trip() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith(f"scrypt${auth.SCRYPT_N}${auth.SCRYPT_R}${auth.SCRYPT_P}$")
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)


@pytest.mark.parametrize(
    ("password", "attempt", "expected"),
    [
        ("correct horse battery staple", "correct horse battery staple", True),
        ("correct horse battery staple", "Correct horse battery staple", False),
        ("correct horse battery staple", "correct horse battery staple ", False),
        ("correct horse battery staple", "", False),
        ("with $ dollars and \"quotes\"", "with $ dollars and \"quotes\"", True),
        ("ünïcødé pässwörd", "ünïcødé pässwörd", True),
        ("caf\u00e9 au lait", "cafe\u0301 au lait", True),  # the same word, composed or not (NFKC)
        ("caf\u00e9 au lait", "cafe au lait", False),
    ],
)
def test_verify_password(password: str, attempt: str, expected: bool) -> None:
    assert verify_password(attempt, fast_hash(password)) is expected


def test_each_hash_has_its_own_salt() -> None:
    assert fast_hash("same password") != fast_hash("same password")
    assert hash_password("same password", salt=SALT, n=FAST_N) == hash_password("same password", salt=SALT, n=FAST_N)


@pytest.mark.parametrize("password", ["", None, 42])
def test_empty_or_non_string_passwords_cannot_be_hashed(password: object) -> None:
    with pytest.raises(ValueError):
        hash_password(password)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "r", "p", "salt"), [(1000, 8, 1, SALT), (2**20, 64, 1, SALT), (FAST_N, 8, 99, SALT), (FAST_N, 8, 1, b"short")],
)
def test_parameters_verification_would_refuse_are_refused_when_hashing(n: int, r: int, p: int, salt: bytes) -> None:
    with pytest.raises(ValueError):
        hash_password("a fine password", salt=salt, n=n, r=r, p=p)


GOOD = hash_password("a fine password", salt=SALT, n=FAST_N)
_, _N, _R, _P, GOOD_SALT, GOOD_KEY = GOOD.split("$")


@pytest.mark.parametrize(
    "stored",
    [
        None,
        42,
        b"scrypt$1024$8$1$AAAA$BBBB",
        "",
        "scrypt",
        "password",
        GOOD.replace("scrypt", "bcrypt", 1),
        GOOD.replace("scrypt", "SCRYPT", 1),
        f"scrypt$1024$8$1${GOOD_SALT}",  # no key
        f"scrypt$1024$8$1${GOOD_SALT}${GOOD_KEY}$extra",
        f"scrypt$1000$8$1${GOOD_SALT}${GOOD_KEY}",  # N not a power of two
        f"scrypt$1$8$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$0$8$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$-1024$8$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$1024.0$8$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$\uff11\uff10\uff12\uff14$8$1${GOOD_SALT}${GOOD_KEY}",  # full-width digits
        f"scrypt$1048576$64$1${GOOD_SALT}${GOOD_KEY}",  # 8 GiB of memory: refused, not attempted
        f"scrypt$1024$0$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$1024$8$0${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$1024$8$99${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$abc$8$1${GOOD_SALT}${GOOD_KEY}",
        f"scrypt$1024$8$1$$${GOOD_KEY}",  # empty salt
        f"scrypt$1024$8$1$AAAA${GOOD_KEY}",  # 3-byte salt
        f"scrypt$1024$8$1${GOOD_SALT}$AAAA",  # 3-byte key
        f"scrypt$1024$8$1${GOOD_SALT}${GOOD_KEY * 3}",  # 96-byte key
        f"scrypt$1024$8$1$!!!!${GOOD_KEY}",  # not base64
        f"scrypt$1024$8$1${GOOD_SALT}${GOOD_KEY[:-1]}",  # truncated base64
        f"scrypt$1024$8$1${GOOD_SALT}é${GOOD_KEY}",
    ],
)
def test_malformed_hashes_are_refused_without_raising(stored: object) -> None:
    assert parse_hash(stored) is None
    assert verify_password("a fine password", stored) is False


def test_a_tampered_key_does_not_verify() -> None:
    flipped = GOOD_KEY[:-2] + ("A" if GOOD_KEY[-2] != "A" else "B") + GOOD_KEY[-1]
    assert parse_hash(GOOD.replace(GOOD_KEY, flipped)) is not None
    assert not verify_password("a fine password", GOOD.replace(GOOD_KEY, flipped))


def test_a_hash_pasted_with_surrounding_spaces_still_verifies() -> None:
    assert verify_password("a fine password", f"  {GOOD}\n")


@pytest.mark.parametrize(
    ("attempt", "viewer", "admin", "expected"),
    [
        ("viewer password", True, True, Identity(auth.PASSWORD_VIEWER, VIEWER, "password")),
        ("admin password", True, True, Identity(auth.PASSWORD_ADMIN, ADMIN, "password")),
        ("admin password", True, False, None),
        ("viewer password", False, True, None),
        ("nobody's password", True, True, None),
        ("", True, True, None),
    ],
)
def test_password_identity(attempt: str, viewer: bool, admin: bool, expected: Identity | None) -> None:
    access = Access(
        mode=HOSTED,
        password_hash=fast_hash("viewer password") if viewer else "",
        admin_password_hash=fast_hash("admin password") if admin else "",
    )
    assert auth.password_identity(attempt, access) == expected


# --- allowlist and roles -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "emails", "domains", "expected"),
    [
        ("alice@desk.example", ["alice@desk.example"], [], True),
        ("Alice@Desk.EXAMPLE", ["alice@desk.example"], [], True),
        ("alice@desk.example", ["ALICE@desk.example "], [], True),
        (" alice@desk.example\n", ["alice@desk.example"], [], True),
        ("bob@desk.example", ["alice@desk.example"], [], False),
        ("bob@desk.example", [], ["desk.example"], True),
        ("BOB@DESK.example", [], ["@Desk.Example"], True),
        ("bob@desk.example", [], ["desk.example."], True),
        ("bob@eu.desk.example", [], ["desk.example"], False),  # subdomains are not implied
        ("bob@evil.com.example.com", [], ["evil.com"], False),
        ("bob@evil.com.example.com", [], ["example.com"], False),
        ("bob@example.com.evil.com", [], ["example.com"], False),
        ("bob@notdesk.example", [], ["desk.example"], False),
        ("bob@desk.example.", [], ["desk.example"], False),
        ("alice@desk.example@evil.test", ["alice@desk.example"], ["desk.example"], False),
        ("alice@evil.test", ["alice@desk.example"], ["desk.example"], False),
        ("alice@evil.test", [], ["evil.test"], True),
        ("desk.example", [], ["desk.example"], False),
        ("@desk.example", [], ["desk.example"], False),
        ("alice@", ["alice@"], [], False),
        ("alice @desk.example", [], ["desk.example"], False),
        ("alice\n@desk.example", [], ["desk.example"], False),
        ("alice@desk..example", [], ["desk..example"], False),
        ("bob@desk.example", [], ["example"], False),  # a bare top-level domain is not a domain here
        ("bob@desk.example", [], ["*.example"], False),  # no wildcards
        ("bob@desk.example", ["*@desk.example"], [], False),
        ("", [""], [""], False),
        (None, ["alice@desk.example"], ["desk.example"], False),
        ("alice@desk.example", [], [], False),
    ],
)
def test_is_allowed(email: object, emails: list[str], domains: list[str], expected: bool) -> None:
    assert is_allowed(email, emails, domains) is expected


@pytest.mark.parametrize(
    ("email", "admins", "expected"),
    [
        ("alice@desk.example", ["alice@desk.example"], ADMIN),
        ("ALICE@desk.example", ["alice@Desk.example"], ADMIN),
        ("bob@desk.example", ["alice@desk.example"], VIEWER),
        ("bob@desk.example", ["desk.example"], VIEWER),  # admins are e-mails, never whole domains
        ("bob@desk.example", [], VIEWER),
    ],
)
def test_role_for(email: str, admins: list[str], expected: str) -> None:
    assert auth.role_for(email, admins) == expected


DESK = Access(mode=HOSTED, allowed_emails=("carol@partner.example",), allowed_domains=("desk.example",),
              admins=("alice@desk.example", "root@ops.example"))


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"is_logged_in": True, "email": "bob@desk.example"}, Identity("bob@desk.example", VIEWER, "oidc")),
        ({"is_logged_in": True, "email": "Bob@Desk.Example"}, Identity("bob@desk.example", VIEWER, "oidc")),
        ({"is_logged_in": True, "email": "alice@desk.example"}, Identity("alice@desk.example", ADMIN, "oidc")),
        ({"is_logged_in": True, "email": "root@ops.example"}, Identity("root@ops.example", ADMIN, "oidc")),
        ({"is_logged_in": True, "email": "carol@partner.example"}, Identity("carol@partner.example", VIEWER, "oidc")),
        ({"is_logged_in": True, "email": "dave@partner.example"}, None),
        ({"is_logged_in": True, "email": "eve@desk.example.evil.test"}, None),
        ({"is_logged_in": True, "email": "bob@desk.example", "email_verified": False}, None),
        ({"is_logged_in": True, "email": "bob@desk.example", "email_verified": True},
         Identity("bob@desk.example", VIEWER, "oidc")),
        ({"is_logged_in": False, "email": "bob@desk.example"}, None),
        ({"is_logged_in": "true", "email": "bob@desk.example"}, None),
        ({"email": "bob@desk.example"}, None),  # a host that names the viewer has not signed them in
        ({"is_logged_in": True}, None),
        ({"is_logged_in": True, "email": None}, None),
        ({"is_logged_in": True, "email": ["bob@desk.example"]}, None),
    ],
)
def test_oidc_identity(user: dict, expected: Identity | None) -> None:
    assert auth.oidc_identity(user, DESK) == expected


def test_only_admins_can_write() -> None:
    assert [Identity("x", role, "oidc").can_write for role in (VIEWER, ADMIN)] == [False, True]
    assert auth.LOCAL.can_write


# --- attempt limits ------------------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("failures_at", "now", "expected_wait"),
    [
        ([], 0, 0.0),
        ([0, 1, 2, 3], 4, 0.0),  # four of five: may still try
        ([0, 1, 2, 3, 4], 4, 56.0),  # the fifth: wait until the first is a minute old
        ([0, 1, 2, 3, 4], 30, 30.0),
        ([0, 1, 2, 3, 4], 60, 0.0),  # the first failure has left the window
        ([0, 10, 20, 30, 40, 50], 55, 15.0),  # six in the last minute: wait until only four are left in it
        ([0, 100, 200, 300, 400], 401, 0.0),  # spread out: never more than one per minute
    ],
)
def test_attempt_limiter_window(failures_at: list[float], now: float, expected_wait: float) -> None:
    clock = Clock(0)
    limiter = AttemptLimiter(max_failures=5, window_s=60, clock=clock)
    for t in failures_at:
        clock.now = t
        limiter.failed("session-a")
    clock.now = now
    assert limiter.wait_s("session-a") == pytest.approx(expected_wait)


def test_attempt_limiter_keys_are_separate_and_success_forgets() -> None:
    clock = Clock()
    limiter = AttemptLimiter(max_failures=2, window_s=300, clock=clock)
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.wait_s("a") == 300 and limiter.wait_s("b") == 0
    clock.now += 100
    assert limiter.wait_s("a") == 200
    limiter.succeeded("a")
    assert limiter.wait_s("a") == 0


def test_attempt_limiter_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AttemptLimiter, "MAX_KEYS", 3)
    limiter = AttemptLimiter(max_failures=1, window_s=300, clock=Clock())
    for key in "abcde":
        limiter.failed(key)
    assert limiter.wait_s("a") == 0 and limiter.wait_s("e") == 300  # the oldest keys were forgotten
    assert len(limiter._failures) == 3


@pytest.mark.parametrize(("max_failures", "window_s"), [(0, 60), (5, 0), (5, -1)])
def test_attempt_limiter_refuses_nonsense_limits(max_failures: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        AttemptLimiter(max_failures, window_s)


# --- access settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "secrets", "expected"),
    [
        ({}, {}, LOCAL),
        ({}, {"cascade": {"mode": "hosted"}}, HOSTED),
        ({"CASCADE_MODE": "hosted"}, {}, HOSTED),
        ({"CASCADE_MODE": " Hosted "}, {}, HOSTED),
        ({"CASCADE_MODE": "local"}, {"cascade": {"mode": "hosted"}}, LOCAL),  # the environment wins
        ({"CASCADE_MODE": "hosted"}, {"cascade": {"mode": "local"}}, HOSTED),
        ({"CASCADE_MODE": ""}, {"cascade": {"mode": "hosted"}}, HOSTED),  # empty counts as unset
    ],
)
def test_mode(env: dict, secrets: dict, expected: str) -> None:
    assert load_access(env, secrets).mode == expected


@pytest.mark.parametrize(
    ("env", "secrets", "message"),
    [
        ({"CASCADE_MODE": "prod"}, {}, "unknown mode"),
        ({}, {"cascade": {"mode": "public"}}, "unknown mode"),
        ({}, {"cascade": "hosted"}, "must be a table"),
        ({}, {"cascade": {"allowed_emails": [1, 2]}}, "allowed_emails"),
        ({}, {"cascade": {"admins": {"alice": True}}}, "admins"),
        ({}, {"cascade": {"max_failures": "many"}}, "max_failures"),
    ],
)
def test_bad_access_settings_name_the_key(env: dict, secrets: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_access(env, secrets)


def test_access_settings_are_read_from_the_secrets() -> None:
    access = load_access({}, {
        "cascade": {"mode": "hosted", "password_hash": " scrypt$x ", "allowed_emails": "carol@partner.example",
                    "allowed_domains": ["desk.example", " "], "admins": ["alice@desk.example"],
                    "max_failures": 3, "failure_window_s": 60},
    })
    assert access == Access(HOSTED, "scrypt$x", "", ("carol@partner.example",), ("desk.example",),
                            ("alice@desk.example",), 3, 60.0, ())


@pytest.mark.parametrize(
    ("auth_section", "providers"),
    [
        (None, ()),
        ({"redirect_uri": "u", "cookie_secret": "s", "client_id": "id", "client_kwargs": {"prompt": "login"}}, ("",)),
        ({"redirect_uri": "u", "cookie_secret": "s", "google": {"client_id": "g"}, "microsoft": {"client_id": "m"}},
         ("google", "microsoft")),
    ],
)
def test_oidc_providers_come_from_the_auth_section(auth_section: dict | None, providers: tuple[str, ...]) -> None:
    secrets = {} if auth_section is None else {"auth": auth_section}
    assert load_access({}, secrets).oidc_providers == providers


def test_every_access_key_is_documented_in_the_secrets_example() -> None:
    example = (PROJECT_ROOT / ".streamlit" / "secrets.toml.example").read_text()
    missing = [key for key in ACCESS_KEYS if not re.search(rf"^#?\s*{key}\s*=", example, re.MULTILINE)]
    assert not missing, f"undocumented in secrets.toml.example: {missing}"


def test_the_secrets_example_is_valid_toml_once_uncommented() -> None:
    import tomllib

    example = (PROJECT_ROOT / ".streamlit" / "secrets.toml.example").read_text()
    uncommented = "\n".join(re.sub(r"^# ?(?=\[|\w+\s*=)", "", line) for line in example.splitlines())
    secrets = tomllib.loads(uncommented)
    access = load_access({}, secrets)
    assert access.hosted and access.oidc_providers
    assert parse_hash(access.password_hash) is not None


def test_hash_password_command_prints_a_hash_that_verifies(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from lib.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("a long desk password\n"))
    assert main(["hash-password"]) == 0
    stored = capsys.readouterr().out.strip()
    assert verify_password("a long desk password", stored)


def test_hash_password_command_refuses_a_short_password(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from lib.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["hash-password"]) == 1
    assert capsys.readouterr().out == ""
