"""Classification rules, language detection and sentiment: plain functions, no I/O."""

from __future__ import annotations

import pytest
import yaml

from omniroute.v1 import inquiry_pb2
from omniroute_ingest.understanding import Understanding, sentiment
from omniroute_ingest.understanding.rules import RulesError, classify, parse_rule_book

RULES = yaml.safe_load(
    r"""
workspaces:
  "*":
    rules:
      - name: outage
        kind: service_problem
        keywords: [outage, "no signal"]
        patterns: ['\bdown since\b']
        skills: [{name: technical, min_proficiency: 2}]
        priority: 5
      - name: refund
        kind: return
        keywords: [refund, devolución, reembolso]
        skills: [billing]
    sentiment: {angry_below: -0.6, priority_boost: 3, min_tier: 2}
  acme:
    rules:
      - name: cancel
        kind: cancellation
        keywords: [cancel]
        skills: [{name: retention, min_proficiency: 3}]
"""
)


@pytest.fixture(scope="module")
def understanding() -> Understanding:
    return Understanding(parse_rule_book(RULES), ("en", "es", "fr", "de"))


def test_workspace_rules_come_before_shared_ones() -> None:
    book = parse_rule_book(RULES)
    found = classify("Please cancel my outage insurance", book.rules_for("acme"))
    assert found is not None and (found.rule, found.kind) == ("cancel", "cancellation")
    other = classify("Please cancel my outage insurance", book.rules_for("globex"))
    assert other is not None and other.rule == "outage"


def test_keywords_match_whole_words_and_patterns_are_regexes() -> None:
    rules = parse_rule_book(RULES).rules_for("globex")
    assert classify("I want a refunded", rules) is None
    found = classify("Internet DOWN SINCE monday", rules)
    assert found is not None and found.rule == "outage"


def test_apply_fills_kind_skills_priority_language_and_records_why(
    understanding: Understanding,
) -> None:
    inquiry = inquiry_pb2.Inquiry(
        workspace="globex", body="Hola, quiero un reembolso de mi último pedido, por favor."
    )
    understanding.apply(inquiry)
    assert inquiry.kind == inquiry_pb2.INQUIRY_KIND_RETURN
    assert [(s.name, s.min_proficiency) for s in inquiry.required_skills] == [("billing", 1)]
    assert inquiry.language == "es"
    assert inquiry.attributes["classification.rule"] == "refund"
    assert inquiry.attributes["classification.matched"] == "reembolso"
    assert inquiry.attributes["classification.kind"] == "return"
    assert inquiry.attributes["language.detected"] == "es"


def test_what_the_channel_said_wins(understanding: Understanding) -> None:
    inquiry = inquiry_pb2.Inquiry(
        workspace="globex",
        kind=inquiry_pb2.INQUIRY_KIND_QUESTION,
        language="fr",
        priority=7,
        body="There is an outage in my street since this morning, nothing works.",
        required_skills=[inquiry_pb2.SkillRequirement(name="network", min_proficiency=4)],
    )
    understanding.apply(inquiry)
    assert inquiry.kind == inquiry_pb2.INQUIRY_KIND_QUESTION
    assert inquiry.language == "fr"
    assert [s.name for s in inquiry.required_skills] == ["network"]
    assert inquiry.priority == 7  # the rule's 5 does not lower it


def test_an_angry_message_raises_priority_and_asks_for_a_higher_tier(
    understanding: Understanding,
) -> None:
    angry = inquiry_pb2.Inquiry(
        workspace="globex",
        priority=1,
        body="This is absolutely terrible. I am furious, your awful service is a disgrace!",
    )
    understanding.apply(angry)
    assert angry.attributes["sentiment.angry"] == "true"
    assert float(angry.attributes["sentiment.compound"]) < -0.6
    assert angry.priority == 4
    assert angry.attributes["routing.min_tier"] == "2"

    calm = inquiry_pb2.Inquiry(workspace="globex", priority=1, body="Thanks, that was helpful!")
    understanding.apply(calm)
    assert calm.attributes["sentiment.angry"] == "false"
    assert calm.priority == 1
    assert "routing.min_tier" not in calm.attributes


def test_short_texts_get_no_language(understanding: Understanding) -> None:
    inquiry = inquiry_pb2.Inquiry(workspace="globex", subject="test")
    understanding.apply(inquiry)
    assert inquiry.language == ""
    assert "language.detected" not in inquiry.attributes


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"workspaces": {"a": {"rules": [{"name": "x", "kind": "lunch"}]}}}, "rules[0].kind"),
        ({"workspaces": {"a": {"rules": [{"name": "x", "patterns": ["("]}]}}}, "rules[0].patterns"),
        ({"workspaces": {"a": {"rules": [{"name": "x", "priority": 12}]}}}, "rules[0].priority"),
        ({"workspaces": {"a": {"rules": [{"kind": "order"}]}}}, "rules[0]"),
        (
            {
                "workspaces": {
                    "a": {"rules": [{"name": "x", "skills": [{"name": "s", "min_proficiency": 7}]}]}
                }
            },
            "rules[0].skills[0]",
        ),
    ],
)
def test_bad_rules_files_are_refused_naming_the_entry(data: object, where: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rule_book(data)
    assert str(raised.value).startswith(f"workspaces.a.{where}")


def test_sentiment_reads_a_bounded_start_of_the_text_however_many_emoji_it_has() -> None:
    analyzer = sentiment.analyzer()
    angry = "\U0001f621"  # in VADER's emoji lexicon: it becomes several words
    text = "This is terrible " + angry * 195_000  # near the inquiry size limit
    read = sentiment.bounded_text(text, analyzer)
    assert read.startswith("This is terrible ")
    assert read.count(angry) == sentiment.MAX_EMOJI and len(read) <= sentiment.MAX_CHARS
    assert sentiment.compound_score(text, analyzer) < 0
