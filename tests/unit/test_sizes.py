"""The record size budget (omniroute.sizes): its figures, and content cut to fit them."""

from __future__ import annotations

import base64
import json

import pytest

from omniroute.settings import CommonSettings
from omniroute.sizes import (
    HISTORY_KEPT,
    SizeBudget,
    fit_assignment,
    fit_inquiry,
    fit_message,
    fit_text,
)
from omniroute.v1 import checkpoint_pb2, inquiry_pb2, task_pb2

BUDGET = SizeBudget(1_048_576)


def inquiry(body: str, **fields: object) -> inquiry_pb2.Inquiry:
    return inquiry_pb2.Inquiry(
        id="i-1",
        workspace="acme",
        channel=inquiry_pb2.CHANNEL_EMAIL,
        subject="Refund",
        body=body,
        required_skills=[inquiry_pb2.SkillRequirement(name="billing", min_proficiency=2)],
        **fields,  # type: ignore[arg-type]
    )


def test_the_budget_derives_from_the_producers_limit() -> None:
    settings = CommonSettings.from_env(kafka_max_request_bytes=2_000_000)
    assert settings.sizes == SizeBudget(2_000_000)
    assert CommonSettings.from_env().sizes == BUDGET  # aiokafka's default max_request_size
    assert BUDGET.record_bytes < 1_048_576
    assert BUDGET.inquiry_bytes < BUDGET.assignment_bytes < BUDGET.record_bytes


@pytest.mark.parametrize("limit", [65_536, 1_048_576, 5_000_001])
def test_an_inquiry_at_the_limit_fits_the_routers_table_and_an_assignment(limit: int) -> None:
    budget = SizeBudget(limit)
    at_limit = inquiry("")
    at_limit.body = "x" * (budget.inquiry_bytes - at_limit.ByteSize())
    while at_limit.ByteSize() > budget.inquiry_bytes:  # the body's length prefix grew
        at_limit.body = at_limit.body[:-1]
    assert budget.inquiry_bytes - 3 <= at_limit.ByteSize() <= budget.inquiry_bytes
    # The router's contents table keeps it as base64 text in a JSON value.
    table_value = json.dumps(base64.b64encode(at_limit.SerializeToString()).decode())
    assert len(table_value) <= budget.record_bytes
    # An assignment with it and a long history still fits what agent-state holds.
    assignment = task_pb2.Assignment(
        inquiry_id="i-1",
        workspace="acme",
        agent_id="agent-" + "a" * 100,
        reservation_id="r" * 36,
        history=[f"declined:agent-{n}" for n in range(HISTORY_KEPT)],
    )
    assignment.inquiry.CopyFrom(at_limit)
    assert assignment.ByteSize() <= budget.assignment_bytes
    held = checkpoint_pb2.HeldContent(reservation_id="r" * 36, agent_id="agent-" + "a" * 100)
    held.assignment.CopyFrom(assignment)
    chunk = checkpoint_pb2.CheckpointChunk(checkpoint_id="c" * 32, index=7, contents=[held])
    assert checkpoint_pb2.CheckpointRecord(chunk=chunk).ByteSize() <= budget.record_bytes


def test_the_problem_names_the_size_the_limit_and_the_setting() -> None:
    assert BUDGET.inquiry_problem(BUDGET.inquiry_bytes) is None
    problem = BUDGET.inquiry_problem(BUDGET.inquiry_bytes + 1)
    assert problem is not None
    assert f"{BUDGET.inquiry_bytes + 1} bytes" in problem
    assert f"limit of {BUDGET.inquiry_bytes} bytes" in problem
    assert "KAFKA_MAX_REQUEST_BYTES 1048576" in problem


def test_text_is_cut_at_a_character_boundary_with_a_marker() -> None:
    text = "é" * 1000  # two bytes each
    cut = fit_text(text, 501)
    assert len(cut.encode()) <= 501
    assert cut.startswith("é" * 10) and "more bytes not shown" in cut
    assert "the full inquiry is on the inquiries topic" in cut
    assert fit_text("short", 100) == "short"


def test_an_inquiry_above_the_limit_keeps_its_routing_fields_and_the_start_of_its_body() -> None:
    big = inquiry("Dear team, " + "y" * 200_000)
    assert not fit_inquiry(big, 300_000)  # under the limit: untouched
    assert fit_inquiry(big, 50_000)
    assert 49_000 < big.ByteSize() <= 50_000
    assert big.body.startswith("Dear team, yyy") and "more bytes not shown" in big.body
    assert (big.id, big.workspace, big.subject) == ("i-1", "acme", "Refund")
    assert big.required_skills[0].name == "billing"


def test_an_inquiry_whose_size_is_not_its_body_loses_attachments_then_attributes() -> None:
    many = inquiry(
        "short",
        attachments=[
            inquiry_pb2.Attachment(name=f"scan-{n}.pdf", uri="file://" + "p" * 500)
            for n in range(100)
        ],
        attributes={f"k{n}": "v" * 100 for n in range(100)},
    )
    assert fit_inquiry(many, 20_000)
    assert many.ByteSize() <= 20_000 and many.body == "short" and many.id == "i-1"


def test_an_assignment_loses_its_oldest_history_before_any_of_the_content() -> None:
    assignment = task_pb2.Assignment(
        inquiry_id="i-1", history=[f"declined:agent-{n:05}" for n in range(20_000)]
    )
    assignment.inquiry.CopyFrom(inquiry("the customer's words " * 100))
    body = assignment.inquiry.body
    assert fit_assignment(assignment, 100_000)
    assert assignment.ByteSize() <= 100_000
    assert assignment.inquiry.body == body  # the content is whole
    history = list(assignment.history)
    assert history[0].startswith("omitted:") and history[-1] == "declined:agent-19999"
    assert int(history[0].split(":")[1]) + len(history) - 1 == 20_000


def test_an_assignment_too_large_for_its_content_keeps_the_newest_history_and_cuts_the_body() -> (
    None
):
    assignment = task_pb2.Assignment(
        inquiry_id="i-1", history=[f"offered:agent-{n}" for n in range(500)]
    )
    assignment.inquiry.CopyFrom(inquiry("z" * 1_100_000))
    assert fit_assignment(assignment, BUDGET.assignment_bytes)
    assert assignment.ByteSize() <= BUDGET.assignment_bytes
    assert len(assignment.history) == HISTORY_KEPT + 1  # the newest, after "omitted:450"
    assert assignment.history[0] == "omitted:450"
    assert "more bytes not shown" in assignment.inquiry.body


def test_a_conversation_message_is_cut_to_fit() -> None:
    message = task_pb2.ConversationMessage(workspace="acme", inquiry_id="i-1", agent_id="a")
    message.message.CopyFrom(inquiry("w" * 2_000_000))
    assert fit_message(message, BUDGET.assignment_bytes)
    assert message.ByteSize() <= BUDGET.assignment_bytes
    assert message.message.body.startswith("www") and message.inquiry_id == "i-1"
    assert not fit_message(message, BUDGET.assignment_bytes)
