"""convo: WhatsApp Business windows, lifecycle and Meta billing, as a nightly batch."""

__version__ = "0.1.0"
