"""Sentiment of an inquiry's text (VADER): how angry is the customer?

VADER scores English best; for other languages the score tends to 0
(neutral), so a foreign-language message is never wrongly escalated.
"""

from __future__ import annotations

import functools

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

MAX_CHARS = 5000


@functools.cache
def analyzer() -> SentimentIntensityAnalyzer:
    """The VADER analyzer, built once per process (it loads its lexicon)."""
    return SentimentIntensityAnalyzer()


def compound_score(text: str, analyzer: SentimentIntensityAnalyzer) -> float:
    """VADER's compound score of `text`: -1 (most negative) to +1 (most positive)."""
    if not text.strip():
        return 0.0
    return float(analyzer.polarity_scores(text[:MAX_CHARS])["compound"])
