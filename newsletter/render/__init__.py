"""From an issue to bytes: Markdown + Jinja2 + premailer once, personalization, plain text, lint, MIME."""
