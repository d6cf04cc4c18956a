"""Bounces and complaints that arrive after the send: reading a mailbox, understanding reports, the rules.

The flow: a mailbox (IMAP, a Maildir, or one message from an MTA's pipe) gives raw messages;
`message.py` reads each within limits; `classify.py` says what it reports (an RFC 3464 DSN, an
RFC 5965 abuse report, an Amazon SES notification, a non-standard bounce via flufl.bounce, or an
auto-reply to ignore); `identify.py` finds the recipient (the VERP token first, the report's fields
second) and the campaign; `process.py` records the events, whose rules (state/bounces.py) suppress
addresses, and only then marks the messages processed.
"""
