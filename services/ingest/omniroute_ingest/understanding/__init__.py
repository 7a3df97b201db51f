"""Understanding an inquiry: classification rules, language and sentiment.

`Understanding.apply` fills in what the channel did not say and records why
on the inquiry's attributes, so agents and SREs can see how it was routed:

- `classification.rule`, `classification.kind`, `classification.matched`
  (the configured keyword or pattern that matched);
- `language.detected`, `language.confidence` (when the language was detected);
- `sentiment.compound` (VADER, -1..1) and `sentiment.angry` ("true"/"false");
  an angry message also gets `routing.min_tier` when the policy asks for one.

What the channel set explicitly wins: the kind only when unspecified, skills
only when none were given, the language only when empty; priority is only
ever raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from omniroute.v1 import inquiry_pb2
from omniroute_ingest.schemas import kind_value
from omniroute_ingest.understanding import language, sentiment
from omniroute_ingest.understanding.rules import RuleBook, classify, parse_rule_book

if TYPE_CHECKING:
    from omniroute_ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class Understanding:
    """Applies classification, language detection and sentiment to inquiries."""

    def __init__(
        self,
        rule_book: RuleBook | None = None,
        languages: tuple[str, ...] = ("en", "es", "fr", "de", "it", "pt", "nl"),
        language_min_letters: int = 20,
    ) -> None:
        self.rule_book = rule_book or RuleBook()
        self._detector = language.detector(tuple(sorted(languages)))
        self._analyzer = sentiment.analyzer()
        self._min_letters = language_min_letters

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Understanding:
        """The understanding configured by the settings (reads the rules file once)."""
        rule_book = RuleBook()
        if settings.ingest_rules_path:
            text = Path(settings.ingest_rules_path).read_text()
            rule_book = parse_rule_book(yaml.safe_load(text))
        return cls(rule_book, tuple(settings.ingest_languages), settings.ingest_language_min_chars)

    def warm_up(self) -> None:
        """Load the language models now rather than on the first inquiry (seconds)."""
        language.detect_language("warming up the language models once", self._detector, 1, 0)

    def apply_ivr(self, inquiry: inquiry_pb2.Inquiry, digits: str) -> None:
        """Apply what the caller selected in the IVR menu (recorded as `ivr.*` attributes)."""
        inquiry.attributes["voice.ivr_digits"] = digits
        selected = self.rule_book.ivr_for(inquiry.workspace, digits)
        if selected is None:
            return
        inquiry.attributes["ivr.selection"] = selected.rule
        if selected.kind and inquiry.kind == inquiry_pb2.INQUIRY_KIND_UNSPECIFIED:
            inquiry.kind = kind_value(selected.kind)
        if selected.skills and not inquiry.required_skills:
            for name, level in selected.skills:
                inquiry.required_skills.add(name=name, min_proficiency=level)
        inquiry.priority = max(inquiry.priority, selected.priority)

    def apply(self, inquiry: inquiry_pb2.Inquiry) -> None:
        """Fill in kind, skills, language and priority where the channel left them empty."""
        text = f"{inquiry.subject}\n{inquiry.body}".strip()
        attributes = inquiry.attributes

        found = classify(text, self.rule_book.rules_for(inquiry.workspace)) if text else None
        if found is not None:
            attributes["classification.rule"] = found.rule
            attributes["classification.matched"] = found.matched
            if found.kind and inquiry.kind == inquiry_pb2.INQUIRY_KIND_UNSPECIFIED:
                inquiry.kind = kind_value(found.kind)
            if found.skills and not inquiry.required_skills:
                for name, level in found.skills:
                    inquiry.required_skills.add(name=name, min_proficiency=level)
            inquiry.priority = max(inquiry.priority, found.priority)
        if inquiry.kind != inquiry_pb2.INQUIRY_KIND_UNSPECIFIED:
            attributes["classification.kind"] = (
                inquiry_pb2.InquiryKind.Name(inquiry.kind).removeprefix("INQUIRY_KIND_").lower()
            )

        if not inquiry.language:
            detected = language.detect_language(text, self._detector, self._min_letters)
            if detected is not None:
                inquiry.language = detected.code
                attributes["language.detected"] = detected.code
                attributes["language.confidence"] = f"{detected.confidence:.2f}"

        if text:
            score = sentiment.compound_score(text, self._analyzer)
            policy = self.rule_book.sentiment_for(inquiry.workspace)
            angry = score < policy.angry_below
            attributes["sentiment.compound"] = f"{score:.2f}"
            attributes["sentiment.angry"] = "true" if angry else "false"
            if angry:
                inquiry.priority = min(10, inquiry.priority + policy.priority_boost)
                if policy.min_tier:
                    attributes["routing.min_tier"] = str(policy.min_tier)
