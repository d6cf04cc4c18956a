"""newsletter: a Markdown-first email newsletter publisher."""

__version__ = "0.1.0"
