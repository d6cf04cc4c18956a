"""Who a report is about, and which campaign: the VERP token first, the report's own fields second.

A token is trusted only when its MAC matches the delivery row it names (or, for a test send, an
address the report names); a token that does not verify marks the whole message as forged. Without
a token, an address counts only if a campaign of ours sent it a message, and the campaign is the
one whose Message-ID the returned message carries (else unknown): a report naming an address we
never mailed is left alone. A complaint whose provider redacted the recipient can still be placed
by the unsubscribe link in the reported message's headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses

from ..config import Config
from ..render.mime import message_id_digest
from ..render.unsubscribe import read_token
from ..send.verp import Verp, verp_for
from ..state.bounces import BounceStore, Mailed
from .message import Incoming, clean
from .report import Failure, Report, address_in

# Where the envelope recipient of a bounce (our VERP address) shows, best first.
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "x-rcpt-to", "to", "cc")
_UNSUBSCRIBE = re.compile(r"/unsubscribe/([A-Za-z0-9_-]{16,1024})")


@dataclass(frozen=True)
class Target:
    """One address a report is about, with its campaign (None: a test send, or not known)."""

    email: str
    campaign_id: int | None
    about: str  # the campaign's key, "a test send", or "" when the campaign is not known
    failure: Failure
    identified: str  # token, test token, report, report + Message-ID, unsubscribe link


@dataclass
class Identified:
    targets: list[Target] = field(default_factory=list)
    ignored: str = ""
    skipped: str = ""
    note: str = ""


class Identifier:
    def __init__(self, config: Config, store: BounceStore) -> None:
        self.store = store
        self.verp: Verp | None = verp_for(config)
        self.secret = config.secret_key

    def _token_address(self, report: Report, msg: Message, incoming: Incoming) -> tuple[str, str] | None:
        """(the address, its token) of the first candidate that is our bounce address with a token."""
        if self.verp is None:
            return None
        candidates = [incoming.envelope_to]
        for header in ENVELOPE_HEADERS:
            candidates.extend(str(v) for v in msg.get_all(header, []))
        candidates.extend(report.envelope)
        for raw in candidates:
            for _name, address in getaddresses([clean(raw, 2000)]):
                token = self.verp.token_in(address)
                if token is not None:
                    return clean(address, 120), token
        return None

    def identify(self, report: Report, msg: Message, incoming: Incoming) -> Identified:
        if not report.failures:
            return Identified(skipped="names no recipient")
        found = self._token_address(report, msg, incoming)
        if found is not None:
            return self._by_token(report, *found)
        return self._by_fields(report)

    def _by_token(self, report: Report, address: str, token_text: str) -> Identified:
        assert self.verp is not None
        token = self.verp.parse(token_text)
        if token is None:
            return Identified(skipped=f"a malformed VERP token in {address}")
        if token.test:
            for failure in report.failures:
                if failure.address and self.verp.verify(token, failure.address):
                    if not self.store.mailed(failure.address, limit=1):
                        return Identified(
                            ignored=f"a bounce of a test send to {failure.address}, who is not a subscriber: left alone"
                        )
                    return Identified([Target(failure.address, None, "a test send", failure, "test token")])
            if not any(failure.address for failure in report.failures):
                return Identified(ignored="a report about a test send that does not name its recipient: left alone")
            return Identified(skipped=f"a forged VERP token in {address}: it matches no address the report names")
        row = self.store.delivery(token.number)
        if row is None or row.campaign_id != token.campaign_id or not self.verp.verify(token, row.email):
            return Identified(skipped=f"a forged or stale VERP token in {address}: it names no message we sent")
        # Our message had one recipient; the report may name it as the remote server rewrote it.
        failure = next((f for f in report.failures if f.address == row.email), report.failures[0])
        return Identified([Target(row.email, row.campaign_id, row.campaign_key, failure, "token")])

    def _unsubscribe_address(self, report: Report) -> str:
        original = report.original
        if original is None or not self.secret:
            return ""
        found = _UNSUBSCRIBE.search(original.list_unsubscribe)
        read = read_token(self.secret, found.group(1)) if found else None
        return read[1].lower() if read else ""

    @staticmethod
    def _campaign(report: Report, email: str, sent: list[Mailed]) -> tuple[int | None, str, str]:
        """(campaign id, key, how) of the campaign whose message to `email` the report returns."""
        original = report.original
        digest = original.message_id.strip("<> ").partition("@")[0].lower() if original else ""
        for mailed in sent:
            if digest and message_id_digest(mailed.message_key, email) == digest:
                return mailed.campaign_id, mailed.campaign_key, "report + Message-ID"
        return None, "", "report"

    def _by_fields(self, report: Report) -> Identified:
        result = Identified()
        unknown: list[str] = []
        for failure in report.failures:
            address, how = failure.address, ""
            if not address:
                address, how = self._unsubscribe_address(report), "unsubscribe link"
            if not address and report.original is not None and report.source == "arf":
                address = address_in(report.original.to)
            if not address:
                continue
            sent = self.store.mailed(address)
            if not sent:
                unknown.append(address)
                continue
            campaign_id, key, found_by = self._campaign(report, address, sent)
            result.targets.append(Target(address, campaign_id, key, failure, how or found_by))
        if not result.targets:
            if unknown:
                names = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
                result.skipped = f"names {names}: {'an address' if len(unknown) == 1 else 'addresses'} we never mailed"
            else:
                result.skipped = "names no recipient (no VERP token, no recipient field, no unsubscribe link)"
        elif unknown:
            result.note = f"also named {len(unknown)} address(es) we never mailed"
        return result
