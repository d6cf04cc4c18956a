"""Typed configuration, parsed and validated once at start-up so every later step can trust it."""

from __future__ import annotations

from .load import CONFIG_NAME, ENV_PREFIX, load_config
from .schedule import CronExpr, SubjectTemplate, format_duration, parse_duration
from .sections import (
    BouncesSection,
    Config,
    DeliverySection,
    FeedSection,
    NewsletterSection,
    PathsSection,
    PreviewSection,
    ScheduleSection,
    ServeSection,
    SignupSection,
    SmtpSection,
)

__all__ = [
    "CONFIG_NAME",
    "ENV_PREFIX",
    "BouncesSection",
    "Config",
    "CronExpr",
    "DeliverySection",
    "FeedSection",
    "NewsletterSection",
    "PathsSection",
    "PreviewSection",
    "ScheduleSection",
    "ServeSection",
    "SignupSection",
    "SmtpSection",
    "SubjectTemplate",
    "format_duration",
    "load_config",
    "parse_duration",
]
