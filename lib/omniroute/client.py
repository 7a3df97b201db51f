"""A small client for channel teams that publish `Inquiry` events straight to Kafka.

    async with InquiryClient(CommonSettings.from_env()) as client:
        inquiry_id = await client.publish(Inquiry(workspace="acme", channel=CHANNEL_CHAT, ...))

It applies the same contract as services/ingest: workspace and channel are
required, priority is 0-10, skill proficiencies 1-5; an id (UUID) and the
arrival time are filled in when absent; the record is keyed by workspace and
`publish` returns only after the broker acknowledged it (else
`BrokerUnavailable`: retry with the same id, the router de-duplicates).

The command line does the same for one inquiry:

    python -m omniroute.client publish --workspace acme --channel chat --subject "Hello"
    python -m omniroute.client publish --json '{"workspace": "acme", "channel": "CHANNEL_EMAIL"}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from types import TracebackType

from google.protobuf import json_format

from omniroute.codec import MAX_SITE_LENGTH, InvalidEvent, timestamp
from omniroute.kafka import BrokerUnavailable, EventProducer
from omniroute.settings import CommonSettings
from omniroute.v1 import inquiry_pb2

#: Most required skills an inquiry may carry (ingest refuses more, the router dead-letters them):
#: planning cost grows with them, so a forged record must not carry thousands.
MAX_REQUIRED_SKILLS = 20


def validate_inquiry(inquiry: inquiry_pb2.Inquiry) -> None:
    """Raise `InvalidEvent` naming the first field that breaks the contract."""
    if not inquiry.workspace:
        raise InvalidEvent("Inquiry.workspace is required")
    if inquiry.channel == inquiry_pb2.CHANNEL_UNSPECIFIED:
        raise InvalidEvent("Inquiry.channel is required")
    if not 0 <= inquiry.priority <= 10:
        raise InvalidEvent("Inquiry.priority must be 0-10")
    if len(inquiry.required_skills) > MAX_REQUIRED_SKILLS:
        raise InvalidEvent(f"Inquiry.required_skills: at most {MAX_REQUIRED_SKILLS}")
    if len(inquiry.site) > MAX_SITE_LENGTH:
        raise InvalidEvent(f"Inquiry.site: at most {MAX_SITE_LENGTH} characters")
    for index, skill in enumerate(inquiry.required_skills):
        if not skill.name:
            raise InvalidEvent(f"Inquiry.required_skills[{index}].name is required")
        if not 1 <= skill.min_proficiency <= 5:
            raise InvalidEvent(f"Inquiry.required_skills[{index}].min_proficiency must be 1-5")


class InquiryClient:
    """Publishes inquiries to the inquiries topic, acknowledged, keyed by workspace."""

    def __init__(self, settings: CommonSettings, send_timeout_s: float = 10.0) -> None:
        self.settings = settings
        self._send_timeout_s = send_timeout_s
        self._producer: EventProducer | None = None

    async def start(self) -> None:
        """Connect to the broker."""
        self._producer = EventProducer(
            self.settings, client_id="omniroute-client", send_timeout_s=self._send_timeout_s
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, inquiry: inquiry_pb2.Inquiry) -> str:
        """Validate, complete (id, received_at) and publish; returns the inquiry id."""
        validate_inquiry(inquiry)
        if not inquiry.id:
            inquiry.id = str(uuid.uuid4())
        if not inquiry.HasField("received_at"):
            inquiry.received_at.CopyFrom(timestamp(time.time()))
        if self._producer is None:
            raise BrokerUnavailable("client not started")
        await self._producer.publish(self.settings.topic_inquiries, inquiry.workspace, inquiry)
        return inquiry.id

    async def __aenter__(self) -> InquiryClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def inquiry_from_args(args: argparse.Namespace) -> inquiry_pb2.Inquiry:
    """The inquiry described by the command line (JSON first, flags override)."""
    inquiry = inquiry_pb2.Inquiry()
    if args.json:
        json_format.Parse(args.json, inquiry)
    if args.workspace:
        inquiry.workspace = args.workspace
    if args.channel:
        name = args.channel.upper()
        inquiry.channel = inquiry_pb2.Channel.Value(
            name if name.startswith("CHANNEL_") else f"CHANNEL_{name}"
        )
    if args.kind:
        name = args.kind.upper()
        inquiry.kind = inquiry_pb2.InquiryKind.Value(
            name if name.startswith("INQUIRY_KIND_") else f"INQUIRY_KIND_{name}"
        )
    for field in ("id", "subject", "body", "language", "thread_id"):
        if getattr(args, field):
            setattr(inquiry, field, getattr(args, field))
    if args.priority is not None:
        inquiry.priority = args.priority
    for skill in args.skill or []:
        name, _, level = skill.partition(":")
        inquiry.required_skills.add(name=name, min_proficiency=int(level or 1))
    return inquiry


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m omniroute.client publish ...` (also the `omniroute-publish` command)."""
    parser = argparse.ArgumentParser(prog="omniroute.client", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser("publish", help="publish one inquiry and print its id")
    publish.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP)")
    publish.add_argument("--topic", help="inquiries topic (default: $TOPIC_INQUIRIES)")
    publish.add_argument("--json", help="the inquiry in the protobuf JSON mapping")
    publish.add_argument("--workspace")
    publish.add_argument("--channel", help="chat, voice, email, ... or CHANNEL_CHAT, ...")
    publish.add_argument("--kind", help="question, complaint, ... or INQUIRY_KIND_...")
    publish.add_argument("--id")
    publish.add_argument("--subject")
    publish.add_argument("--body")
    publish.add_argument("--language")
    publish.add_argument("--thread-id", dest="thread_id")
    publish.add_argument("--priority", type=int)
    publish.add_argument("--skill", action="append", help="name[:min_proficiency], repeatable")
    args = parser.parse_args(argv)

    overrides = {
        k: v
        for k, v in {"kafka_bootstrap": args.bootstrap, "topic_inquiries": args.topic}.items()
        if v
    }
    settings = CommonSettings.from_env(**overrides)
    try:
        inquiry = inquiry_from_args(args)
        validate_inquiry(inquiry)
    except (InvalidEvent, json_format.ParseError, ValueError) as exc:
        print(f"invalid inquiry: {exc}", file=sys.stderr)
        return 2

    async def run() -> str:
        async with InquiryClient(settings) as client:
            return await client.publish(inquiry)

    try:
        inquiry_id = asyncio.run(run())
    except (BrokerUnavailable, OSError) as exc:
        print(f"not published: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({"id": inquiry_id, "topic": settings.topic_inquiries}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
