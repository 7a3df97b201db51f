"""The HTTP shape of an inquiry: the protobuf JSON mapping of `Inquiry`, validated.

Field names are accepted in camelCase (`requiredSkills`, as protobuf's JSON
mapping writes them) or as in the .proto (`required_skills`). Enums are
accepted by their protobuf name (`CHANNEL_CHAT`) or short name (`chat`).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from omniroute.codec import timestamp
from omniroute.v1 import inquiry_pb2

CHANNELS = [n.removeprefix("CHANNEL_").lower() for n in inquiry_pb2.Channel.keys()[1:]]
KINDS = [n.removeprefix("INQUIRY_KIND_").lower() for n in inquiry_pb2.InquiryKind.keys()[1:]]


def _enum_short_name(prefix: str) -> BeforeValidator:
    def normalise(value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower().removeprefix(prefix)
        return value

    return BeforeValidator(normalise)


ChannelName = Annotated[
    str, _enum_short_name("channel_"), Field(pattern="^(" + "|".join(CHANNELS) + ")$")
]
KindName = Annotated[
    str, _enum_short_name("inquiry_kind_"), Field(pattern="^(" + "|".join(KINDS) + ")$")
]
Text = Annotated[str, Field(max_length=200)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


class CustomerIn(_Model):
    """Who the customer is and how to answer them."""

    id: Text = ""
    name: Text = ""
    contact_address: Annotated[str, Field(max_length=500)] = ""
    language: Annotated[str, Field(max_length=35)] = ""
    segment: Annotated[str, Field(max_length=50)] = ""


class SkillIn(_Model):
    """A skill the agent must have, at least at `minProficiency` (1-5)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    min_proficiency: Annotated[int, Field(ge=1, le=5)] = 1


class AttachmentIn(_Model):
    """A reference to a file stored elsewhere."""

    name: Text
    content_type: Text = ""
    size_bytes: Annotated[int, Field(ge=0)] = 0
    uri: Annotated[str, Field(max_length=2000)] = ""


class InquiryIn(_Model):
    """An inquiry as a channel submits it. `workspace` and `channel` are required."""

    id: Annotated[str, Field(max_length=200)] = ""
    workspace: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
    channel: ChannelName
    customer: CustomerIn = CustomerIn()
    kind: KindName | None = None
    subject: Annotated[str, Field(max_length=1000)] = ""
    body: Annotated[str, Field(max_length=200_000)] = ""
    required_skills: Annotated[list[SkillIn], Field(max_length=20)] = []
    language: Annotated[str, Field(max_length=35)] = ""
    priority: Annotated[int, Field(ge=0, le=10)] = 0
    attributes: Annotated[
        dict[str, Annotated[str, Field(max_length=1000)]], Field(max_length=50)
    ] = {}
    thread_id: Annotated[str, Field(max_length=500)] = ""
    received_at: datetime | None = None
    external_id: Annotated[str, Field(max_length=500)] = ""
    attachments: Annotated[list[AttachmentIn], Field(max_length=50)] = []

    def to_proto(self, now: float | None = None) -> inquiry_pb2.Inquiry:
        """The canonical event; an id and the arrival time are filled in when absent."""
        received = self.received_at.timestamp() if self.received_at else (now or time.time())
        return inquiry_pb2.Inquiry(
            id=self.id or str(uuid.uuid4()),
            workspace=self.workspace,
            channel=inquiry_pb2.Channel.Value("CHANNEL_" + self.channel.upper()),
            customer=inquiry_pb2.Customer(**self.customer.model_dump()),
            kind=inquiry_pb2.InquiryKind.Value("INQUIRY_KIND_" + self.kind.upper())
            if self.kind
            else 0,  # type: ignore[arg-type]
            subject=self.subject,
            body=self.body,
            required_skills=[
                inquiry_pb2.SkillRequirement(name=s.name, min_proficiency=s.min_proficiency)
                for s in self.required_skills
            ],
            language=self.language,
            priority=self.priority,
            attributes=self.attributes,
            thread_id=self.thread_id,
            received_at=timestamp(received),
            external_id=self.external_id,
            attachments=[inquiry_pb2.Attachment(**a.model_dump()) for a in self.attachments],
        )
