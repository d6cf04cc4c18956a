"""One message over an open aiosmtplib connection, with bytes that are already in wire form.

`aiosmtplib.SMTP.sendmail` re-parses the sender and recipient (four times per message), runs a
line-ending regex over the whole message (twice when the server advertises SIZE) and a
dot-stuffing regex; for a 27 KB message that was most of a send's CPU. The message factory
prepares the bytes once per issue in wire form (CRLF line ends, dot-stuffed), and list addresses
are validated when the list is read, so here MAIL, RCPT and DATA go out as they are.

aiosmtplib has no public call for "DATA with these bytes as they are", so this module relies on
its protocol object's internals, kept in this one place and used only with the versions it was
tested with (`SUPPORTED`); any other version gets the plain `sendmail` path (`wire_supported()`).
The replies raise the same exceptions `sendmail` raises, so `replies.classify` reads them alike,
and an envelope refused halfway is reset (RSET) as `sendmail` does.
"""

from __future__ import annotations

import contextlib
import re
from importlib.metadata import version

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.status import SMTPStatus

SUPPORTED = ((5, 1, 3), (5, 2, 0))  # tested from 5.1.3 up to (not including) 5.2.0
_SAFE_ADDRESS = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no space, no control character


def _version() -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version("aiosmtplib").split(".")[:3])
    except (ValueError, Exception):
        return ()


def wire_supported() -> bool:
    """Whether the installed aiosmtplib is one this adapter was tested with."""
    low, high = SUPPORTED
    found = _version()
    protocol = getattr(aiosmtplib, "protocol", None)
    return bool(found) and low <= found < high and hasattr(getattr(protocol, "SMTPProtocol", None), "read_response")


def envelope_address(address: str) -> bytes:
    """`<address>` for MAIL FROM / RCPT TO; refuses what could break the command line."""
    if not _SAFE_ADDRESS.match(address) or "<" in address or ">" in address:
        raise ValueError(f"address {address!r} cannot be put on an SMTP command line")
    return b"<" + address.encode("ascii") + b">"


async def send_wire(client: aiosmtplib.SMTP, mail_from: bytes, recipient: str, data: bytes) -> str:
    """MAIL, RCPT and DATA for one recipient; `data` is in wire form. Returns the server's final reply text."""
    await client._ehlo_or_helo_if_needed()
    options = [f"SIZE={len(data)}".encode()] if client.supports_extension("size") else []
    try:
        response = await client.execute_command(b"MAIL", b"FROM:" + mail_from, *options)
        if response.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, mail_from.decode())
        response = await client.execute_command(b"RCPT", b"TO:" + envelope_address(recipient))
        if response.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)]
            )
        return (await _data(client, data)).message
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset()
        raise


async def _data(client: aiosmtplib.SMTP, data: bytes) -> SMTPResponse:
    """DATA, the bytes, the final dot: `SMTPProtocol.execute_data_command` minus its two regex passes."""
    protocol = client.protocol
    if protocol is None or protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        async with protocol._command_lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=client.timeout)
            if start.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol._response_pending = True
            protocol.write(data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n")
            response = await protocol.read_response(timeout=client.timeout)
            if response.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
            return response
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise
