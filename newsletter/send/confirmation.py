"""Sending one signup confirmation through the configured transport (the outbox by default).

The same transports as a campaign (send/transport.py): the outbox writes outbox/signup/<address>.eml,
SMTP delivers over one fresh connection. One retry after a temporary failure; the caller logs the
outcome (the form's answer never depends on it, so nobody learns anything from it).
"""

from __future__ import annotations

import asyncio
import datetime as dt

from ..config import Config
from ..render.confirm_token import Signup, make_confirm_token
from ..render.confirmation import confirmation_message
from ..render.mime import list_id
from .transport import Attempt, AttemptKind
from .transports import transport_for

OUTBOX_BATCH = "signup"


def confirm_url(config: Config, signup: Signup) -> str:
    return f"{config.newsletter.base_url.rstrip('/')}/confirm/{make_confirm_token(config.secret_key, signup)}"


def new_signup(config: Config, email: str, name: str, first_name: str, client: str, now: dt.datetime) -> Signup:
    return Signup(list_id(config), email, name, first_name, now, client)


async def send_confirmation(config: Config, signup: Signup, retry_delay: float = 2.0) -> Attempt:
    """Render and send the confirmation mail for `signup`; the transport's last attempt."""
    data = await asyncio.to_thread(
        confirmation_message, config, signup.email, signup.name, signup.first_name, confirm_url(config, signup)
    )
    _size, connect = transport_for(config, OUTBOX_BATCH)
    transport = connect()
    try:
        attempt = await transport.send(config.newsletter.from_address, signup.email, data)
        if attempt.kind == AttemptKind.TRANSIENT:
            await transport.reset()
            await asyncio.sleep(retry_delay)
            attempt = await transport.send(config.newsletter.from_address, signup.email, data)
    finally:
        await transport.close()
    return attempt
