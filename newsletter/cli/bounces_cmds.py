"""`bounces fetch` and `bounces receive`: bounces and complaints that arrive after the send."""

from __future__ import annotations

import sys

import click

from ..errors import NewsletterError
from . import State, app, engine, pass_state

# sysexits.h EX_TEMPFAIL: an MTA keeps the message and tries the pipe again later.
TEMPFAIL = 75


@app.group()
def bounces() -> None:
    """Read bounces and spam complaints; suppress the addresses they name ([bounces] in newsletter.toml)."""


@bounces.command()
@pass_state
def fetch(state: State) -> None:
    """Process every message in the bounce mailbox (IMAP or Maildir) once, and move it to processed_folder.

    Prints one line per message (counted, ignored, skipped, with the reason) and a summary.
    """
    from ..bounces.fetch import fetch as fetch_all

    config = state.config
    engine(config)  # created or upgraded first, said in one line
    where, summary = fetch_all(config, click.echo)
    click.echo(f"{where}: {summary.text()}")


@bounces.command()
@click.option(
    "--recipient",
    metavar="ADDRESS",
    default="",
    help="The envelope recipient, as the MTA gives it (Postfix: ${recipient}); holds the VERP token.",
)
@pass_state
def receive(state: State, recipient: str) -> None:
    """Process one message from standard input (an MTA's pipe transport).

    Exits 0 once the message is handled (counted, ignored or skipped), and 75 (EX_TEMPFAIL, the MTA
    retries later) when it cannot be recorded, so no bounce is ever lost.
    """
    from ..bounces.fetch import read_limited
    from ..bounces.fetch import receive as receive_one
    from ..bounces.message import Incoming

    try:
        config = state.config
        engine(config)
        incoming = read_limited(sys.stdin.buffer)
        handled = receive_one(config, Incoming(incoming.data, incoming.truncated, recipient.strip()))
    except NewsletterError as exc:
        click.echo(f"newsletter: error: {exc}; the MTA will retry", err=True)
        raise click.exceptions.Exit(TEMPFAIL) from None
    except Exception as exc:  # never bounce a bounce: keep it queued until this is fixed
        click.echo(f"newsletter: error: could not record the message ({type(exc).__name__}: {exc})", err=True)
        raise click.exceptions.Exit(TEMPFAIL) from None
    click.echo(f"{handled.ref}: {handled.line}")
