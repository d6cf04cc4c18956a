"""The signup confirmation email: one message from the theme's confirm.html and confirm.txt.

Rendered per signup (it is one message, not a campaign), so it uses the stdlib's EmailMessage; the
look is the theme's (the layout, the stylesheet inlined by premailer). The subject is the text
template's `{% set subject = ... %}`, so a theme in another language can say it in that language.
The message carries no List-Unsubscribe: it is a one-off transactional mail, asked for by the form.
"""

from __future__ import annotations

import datetime as dt
import secrets
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from jinja2 import TemplateError

from ..config import Config, format_duration
from ..errors import TemplateProblem
from .dkim import signer_for
from .headers import check_header
from .issue import _render, environment, inline_css

DEFAULT_SUBJECT = "Confirm your subscription to {name}"


def expiry_text(expiry: dt.timedelta) -> str:
    """7 days, 1 day, 12 hours, 30 minutes: how long the link works, in words."""
    seconds = int(expiry.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return format_duration(expiry)


def confirmation_message(config: Config, email: str, name: str, first_name: str, confirm_url: str) -> bytes:
    """The whole message (RFC 5322 bytes with CRLF), ready for a transport."""
    nl = config.newsletter
    check_header(name, "signup name")
    env = environment(config)
    subscriber = {"email": email, "name": name, "first_name": first_name}
    context = {
        "newsletter": nl,
        "subscriber": subscriber,
        "confirm_url": confirm_url,
        "expires": expiry_text(config.signup.confirm_expiry),
        "preheader": f"Confirm your subscription to {nl.name}",
        "view_online_url": "",
        "unsubscribe_url": "",
    }
    try:
        module = env.get_template("confirm.txt").make_module(context)
    except TemplateError as exc:  # the render below names the file and line
        _render(env, "confirm.txt", context)
        raise TemplateProblem(f"confirm.txt: {exc.message}; fix the template") from None
    subject = str(getattr(module, "subject", "") or DEFAULT_SUBJECT.format(name=nl.name)).strip()
    check_header(subject, "confirm.txt: subject")
    text = _render(env, "confirm.txt", context).strip() + "\n"
    html = inline_css(_render(env, "confirm.html", {**context, "subject": subject}))
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = nl.from_
    message["To"] = formataddr((name, email)) if name else email
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{nl.domain}>"
    if nl.reply_to:
        message["Reply-To"] = nl.reply_to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    data = message.as_bytes()
    signer = signer_for(config)  # signed like every other message when [dkim] is set
    return data if signer is None else signer.sign(data)
