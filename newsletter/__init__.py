"""newsletter: a Markdown-first email newsletter publisher."""

__version__ = "0.2.0"
