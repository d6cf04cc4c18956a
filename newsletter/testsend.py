"""Test sends: one issue to any addresses, subject prefixed [TEST], no campaign recorded.

The CLI's `send-test` and the preview's "Send test" button both call `send_test`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from .config import Config
from .content import Issue
from .delivery import SendResult, backend_for
from .errors import NewsletterError
from .message import MessageFactory
from .render import render_issue
from .subscribers import Subscriber, normalize_address, sample_subscriber

TEST_PREFIX = "[TEST] "


async def send_test(config: Config, issue: Issue, addresses: Sequence[str]) -> list[SendResult]:
    """Render once, send to each address (personalized as the sample subscriber, with their address)."""
    # The list's own rule: addresses it could send to (ASCII local parts), in its normal form.
    recipients = [normalize_address(a, "--to") for a in addresses]
    if not recipients:
        raise NewsletterError("send-test needs at least one --to ADDRESS")
    rendered = render_issue(issue, config, subject_prefix=TEST_PREFIX)
    factory = MessageFactory(rendered, config)
    sample = sample_subscriber(config)
    batch = f"test-{dt.datetime.now():%Y%m%d-%H%M%S}"
    results = []
    async with backend_for(config, batch) as backend:
        for address in recipients:
            subscriber = Subscriber(email=address, name=sample.name, fields={**sample.fields, "email": address})
            results.append(await backend.send(factory.envelope_from, [address], factory.build(subscriber)))
    return results
