"""Password hashes: scrypt (RFC 7914) from the standard library, salted, parameters in the stored string.

Why scrypt and not argon2-cffi: scrypt is memory-hard like Argon2, is in ``hashlib`` (OpenSSL), and
needs no new compiled dependency; OWASP's password storage guidance lists it beside Argon2id. The
stored form ``scrypt$n$r$p$salt$hash`` (base64) keeps the cost with each hash, so the cost can be
raised later without breaking existing passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

# n=2**15, r=8, p=1: 32 MiB and some 50-100 ms per hash, a login's cost that slows guessing (OWASP lists
# n=2**17 as its first choice, 128 MiB a login; 2**15 keeps many concurrent logins within memory)
_N, _R, _P, _LEN = 2**15, 8, 1, 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN, maxmem=_MAXMEM)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; compared in constant time. A malformed hash matches nothing."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)
