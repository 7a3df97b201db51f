"""Language detection (lingua) of an inquiry's text, when the channel did not say.

Detection only answers for texts long enough to be told apart and when one
language clearly leads; otherwise the inquiry keeps an empty language and the
router serves it in the workspace's default.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

#: Texts are cut to this many characters before detection (enough, and bounded work).
MAX_CHARS = 2000


@dataclass(frozen=True)
class DetectedLanguage:
    """An ISO 639-1 code and lingua's confidence (0-1)."""

    code: str
    confidence: float


@functools.cache
def detector(codes: tuple[str, ...]) -> LanguageDetector:
    """A detector choosing among `codes` (ISO 639-1), built once per process."""
    isos = [IsoCode639_1.from_str(c.lower()) for c in codes]
    if len(isos) < 2:
        raise ValueError("language detection needs at least two languages")
    return LanguageDetectorBuilder.from_iso_codes_639_1(*isos).build()


def detect_language(
    text: str, detector: LanguageDetector, min_letters: int = 20, min_confidence: float = 0.5
) -> DetectedLanguage | None:
    """The language of `text`, or None when too short or too uncertain."""
    text = text[:MAX_CHARS]
    if len(re.findall(r"[^\W\d_]", text)) < min_letters:
        return None
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value < min_confidence:
        return None
    best = values[0]
    return DetectedLanguage(best.language.iso_code_639_1.name.lower(), round(best.value, 2))
