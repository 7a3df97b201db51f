"""Understanding an inquiry: classification rules, language and sentiment.

Plain functions and data with no I/O; `Understanding.apply` fills in what the
channel did not say and records why on the inquiry's attributes.
"""

from __future__ import annotations

from omniroute.v1 import inquiry_pb2


class Understanding:
    """Applies the configured understanding steps to inquiries."""

    def apply(self, inquiry: inquiry_pb2.Inquiry) -> None:
        """Fill in kind, skills, language and priority where the channel left them empty."""

    @classmethod
    def from_settings(cls, settings: object) -> Understanding:
        """The understanding configured by the settings."""
        return cls()
