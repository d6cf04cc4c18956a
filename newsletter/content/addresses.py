"""Addresses: checking them fast enough for a million-row list, and remembering which were seen.

email-validator checks syntax per the RFCs (no DNS lookups); the domain's verdict is cached, since
most lists share a few domains. `Seen` finds duplicates in flat memory.
"""

from __future__ import annotations

import re
from array import array

from email_validator import EmailNotValidError, validate_email

from ..errors import NewsletterError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 5322 dot-atom in ASCII: the exact rule email-validator accepts without further checks.
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
LOAD = 0.8  # the share of Seen's slots filled before it grows: linear probing stays short below it


class Seen:
    """Addresses already seen and their first line, in bounded, compact memory.

    A set of a million address strings costs over 100 MB; this keeps 64-bit fingerprints (Python's
    SipHash of the lower-cased address) and line numbers in flat arrays: 12 bytes a slot, at most 80%
    of the slots filled, so 15 bytes per address.
    Two different addresses share a fingerprint with a probability of about n²/2⁶⁵ (1e-8 for a
    million): the second would be reported as a duplicate of the first, naming both lines.
    """

    def __init__(self, expected: int = 0) -> None:
        """`expected`: about how many addresses will come (a file's line count): sized once, never copied."""
        self._size = max(4096, int(expected / LOAD) + 1)  # not a power of two: 12 bytes a slot add up at 1M
        # Filled by repetition: `array("Q", bytes(n))` would hold an n-byte temporary beside the table.
        self._keys = array("Q", [0]) * self._size
        self._lines = array("I", [0]) * self._size
        self._count = 0

    def _slot(self, key: str) -> tuple[int, int]:
        """(slot, fingerprint): the slot holding `key`'s fingerprint, else the empty one where it goes."""
        fp = hash(key) & 0xFFFF_FFFF_FFFF_FFFF or 1
        size = self._size
        keys = self._keys
        i = fp % size
        while (k := keys[i]) != 0 and k != fp:
            i = i + 1 if i + 1 < size else 0
        return i, fp

    def add(self, key: str, line: int) -> int:
        """0 when `key` is new (now recorded); else the line it was first seen on."""
        i, fp = self._slot(key)
        if self._keys[i]:
            return self._lines[i]
        self._keys[i] = fp
        self._lines[i] = line
        self._count += 1
        if self._count > self._size * LOAD:
            self._grow()
        return 0

    def line_of(self, key: str) -> int:
        """The line `key` was first seen on; 0 when it was not seen (an empty slot's line is 0)."""
        return self._lines[self._slot(key)[0]]

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        size = self._size = self._size * 2
        self._keys = array("Q", [0]) * size
        self._lines = array("I", [0]) * size
        keys, lines = self._keys, self._lines
        for slot, fp in enumerate(old_keys):  # no intermediate list: memory stays flat while growing
            if fp:
                i = fp % size
                while keys[i]:
                    i = i + 1 if i + 1 < size else 0
                keys[i] = fp
                lines[i] = old_lines[slot]


class AddressChecker:
    """email-validator (no DNS), with the domain's verdict cached: most lists share a few domains.

    Domain checks are about 70% of email-validator's time. A plain ASCII dot-atom local part is
    accepted by email-validator without further checks, so for those the domain verdict (from
    validating `a@<domain>`) is reused; anything else goes through email-validator whole.
    Addresses are returned in the form they are sent to: domain lower-cased, IDNA domains as
    `xn--`, local parts that need SMTPUTF8 refused (the sender does not speak SMTPUTF8).
    """

    def __init__(self, cache_size: int = 100_000) -> None:
        self._domains: dict[str, str | None] = {}
        self._cache_size = cache_size

    def check(self, address: str) -> str:
        """The address to send to; EmailNotValidError with email-validator's message when invalid."""
        local, at, domain = address.rpartition("@")
        if at and len(local) <= 64 and _DOT_ATOM.match(local) and _ASCII_DOMAIN.match(domain):
            ascii_domain = self._domains.get(domain, "")
            if ascii_domain == "":
                ascii_domain = self._domain(domain)
            if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= 254:
                return f"{local}@{ascii_domain}"
        return self._full(address)

    def _domain(self, domain: str) -> str | None:
        try:
            result: str | None = self._full(f"a@{domain}").partition("@")[2]
        except EmailNotValidError:
            result = None
        if len(self._domains) >= self._cache_size:
            self._domains.clear()
        self._domains[domain] = result
        return result

    @staticmethod
    def _full(address: str) -> str:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
        return str(result.ascii_email or result.normalized)


def normalize_address(address: str, what: str = "address") -> str:
    """A single address from the command line, in the form the list and suppressions use."""
    address = address.strip()
    if _CONTROL.search(address):
        raise NewsletterError(f"{what}: {address!r} contains a control character or line break; remove it")
    try:
        return AddressChecker._full(address)
    except EmailNotValidError as exc:
        raise NewsletterError(f"{what}: {address!r} is not a valid email address ({exc})") from None
