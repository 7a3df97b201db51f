"""Sentiment of an inquiry's text (VADER): how angry is the customer?

VADER scores English best; for other languages the score tends to 0
(neutral), so a foreign-language message is never wrongly escalated.
"""

from __future__ import annotations

import functools

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

MAX_CHARS = 5000
#: VADER replaces each emoji by its description (several words) and its cost
#: grows with the square of the words: 5,000 emoji took 27 s of the event
#: loop, so only the first emoji count.
MAX_EMOJI = 100


@functools.cache
def analyzer() -> SentimentIntensityAnalyzer:
    """The VADER analyzer, built once per process (it loads its lexicon)."""
    return SentimentIntensityAnalyzer()


def compound_score(text: str, analyzer: SentimentIntensityAnalyzer) -> float:
    """VADER's compound score of `text`: -1 (most negative) to +1 (most positive)."""
    if not text.strip():
        return 0.0
    return float(analyzer.polarity_scores(bounded_text(text, analyzer))["compound"])


def bounded_text(text: str, analyzer: SentimentIntensityAnalyzer) -> str:
    """The start of `text` VADER reads in bounded time: `MAX_CHARS`, `MAX_EMOJI` of them emoji."""
    kept: list[str] = []
    emoji = 0
    for char in text[:MAX_CHARS]:
        if char in analyzer.emojis:
            emoji += 1
            if emoji > MAX_EMOJI:
                continue
        kept.append(char)
    return "".join(kept)
