"""The channel teams' client and `publish` command line, against the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from devstack.processes import ROOT, SOURCE_PATH
from omniroute.client import InquiryClient, validate_inquiry
from omniroute.codec import InvalidEvent
from omniroute.embedded import Broker
from omniroute.kafka import ensure_topics
from omniroute.settings import CommonSettings
from omniroute.v1 import inquiry_pb2
from tests.support.ingest import reading
from tests.support.processes import topic_env

pytestmark = pytest.mark.integration


async def test_client_publishes_a_completed_inquiry_keyed_by_workspace(
    broker: Broker,
) -> None:
    settings = CommonSettings(
        kafka_bootstrap=broker.bootstrap, topic_inquiries=topic_env()["TOPIC_INQUIRIES"]
    )
    await ensure_topics(settings, [settings.topic_inquiries])
    async with InquiryClient(settings) as client:
        inquiry_id = await client.publish(
            inquiry_pb2.Inquiry(workspace="acme", channel=inquiry_pb2.CHANNEL_EMAIL, subject="Hi")
        )
        with pytest.raises(InvalidEvent, match="channel"):
            await client.publish(inquiry_pb2.Inquiry(workspace="acme"))
    async with reading(broker.bootstrap, settings.topic_inquiries) as reader:
        [inquiry] = await reader.inquiries(1)
    assert reader.records[0][0] == "acme"
    assert inquiry.id == inquiry_id
    assert inquiry.received_at.seconds > 0


def test_validation_names_the_field() -> None:
    bad = inquiry_pb2.Inquiry(
        workspace="a",
        channel=inquiry_pb2.CHANNEL_SMS,
        required_skills=[inquiry_pb2.SkillRequirement(name="x", min_proficiency=9)],
    )
    with pytest.raises(InvalidEvent, match=r"required_skills\[0\].min_proficiency"):
        validate_inquiry(bad)


async def test_publish_command_line(broker: Broker) -> None:
    topic = topic_env()["TOPIC_INQUIRIES"]
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, topic_inquiries=topic)
    await ensure_topics(settings, [topic])
    env = {
        **os.environ,
        "PYTHONPATH": SOURCE_PATH,
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "TOPIC_INQUIRIES": topic,
    }
    command = [
        sys.executable,
        "-m",
        "omniroute.client",
        "publish",
        "--workspace",
        "globex",
        "--channel",
        "voice",
        "--kind",
        "complaint",
        "--skill",
        "billing:3",
        "--json",
        '{"subject": "From the CLI", "priority": 6}',
    ]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    bad = await asyncio.to_thread(
        subprocess.run,
        [*command[:4], "--workspace", "x"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "channel" in bad.stderr
    async with reading(broker.bootstrap, topic) as reader:
        [inquiry] = await reader.inquiries(1)
    assert inquiry.id == printed["id"]
    assert (
        inquiry.workspace,
        inquiry.channel,
        inquiry.kind,
        inquiry.subject,
        inquiry.priority,
    ) == (
        "globex",
        inquiry_pb2.CHANNEL_VOICE,
        inquiry_pb2.INQUIRY_KIND_COMPLAINT,
        "From the CLI",
        6,
    )
    assert [(s.name, s.min_proficiency) for s in inquiry.required_skills] == [("billing", 3)]
