"""The HTTP shape of an inquiry: the protobuf JSON mapping of `Inquiry`, validated.

Field names are accepted in camelCase (`requiredSkills`, as protobuf's JSON
mapping writes them) or as in the .proto (`required_skills`). Enums are
accepted by their protobuf name (`CHANNEL_CHAT`) or their short name (`chat`).
Validation errors name the field (pydantic's `loc`), which the app turns into
a 422 body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from omniroute.client import MAX_REQUIRED_SKILLS
from omniroute.codec import MAX_SITE_LENGTH, timestamp
from omniroute.v1 import inquiry_pb2
from omniroute_ingest.clients import clamp_received_at
from omniroute_ingest.metrics import CHANNELS

KINDS = tuple(n.removeprefix("INQUIRY_KIND_").lower() for n in inquiry_pb2.InquiryKind.keys()[1:])


def _short_enum(prefix: str) -> BeforeValidator:
    """Accept `CHANNEL_CHAT`, `chat` or `Chat` alike (unknown values fail the pattern)."""

    def normalise(value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower().removeprefix(prefix)
        return value

    return BeforeValidator(normalise)


ChannelName = Annotated[
    str,
    _short_enum("channel_"),
    Field(
        pattern="^(" + "|".join(CHANNELS) + ")$",
        description="chat, voice, email, ... or CHANNEL_CHAT, CHANNEL_VOICE, ...",
        examples=["chat"],
    ),
]
KindName = Annotated[
    str,
    _short_enum("inquiry_kind_"),
    Field(
        pattern="^(" + "|".join(KINDS) + ")$",
        description="question, request, complaint, ... or INQUIRY_KIND_COMPLAINT, ...",
    ),
]
Workspace = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
Short = Annotated[str, Field(max_length=200)]

# What a protobuf Timestamp holds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_TIMESTAMP_RANGE = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def _in_timestamp_range(value: datetime) -> datetime:
    """In UTC (naive taken as UTC, never as server time), within a protobuf Timestamp's range.

    `0001-01-01T00:00:00+01:00` is valid ISO 8601 but lies before year 1 in UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _TIMESTAMP_RANGE[0] <= utc <= _TIMESTAMP_RANGE[1]:
        raise ValueError("must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    return utc


UtcTime = Annotated[datetime, AfterValidator(_in_timestamp_range)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


class CustomerIn(_Model):
    """Who the customer is and how to answer them (personal data: never logged)."""

    id: Short = ""
    name: Short = ""
    contact_address: Annotated[str, Field(max_length=500)] = ""
    language: Annotated[str, Field(max_length=35)] = ""
    segment: Annotated[str, Field(max_length=50)] = ""


class SkillIn(_Model):
    """A skill the agent must have, at least at `minProficiency` (1-5)."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    min_proficiency: Annotated[int, Field(ge=1, le=5)] = 1


class AttachmentIn(_Model):
    """A reference to a file stored elsewhere (the event carries no bytes)."""

    name: Short
    content_type: Short = ""
    size_bytes: Annotated[int, Field(ge=0)] = 0
    uri: Annotated[str, Field(max_length=2000)] = ""


class InquiryIn(_Model):
    """An inquiry as a channel submits it; `workspace` and `channel` are required."""

    id: Annotated[
        str,
        Field(
            max_length=200,
            description="Unique id; generated (UUID) when absent. Resending the same id is safe.",
        ),
    ] = ""
    workspace: Workspace
    channel: ChannelName
    customer: CustomerIn = CustomerIn()
    kind: KindName | None = None
    subject: Annotated[str, Field(max_length=1000)] = ""
    body: Annotated[str, Field(max_length=200_000)] = ""
    required_skills: Annotated[list[SkillIn], Field(max_length=MAX_REQUIRED_SKILLS)] = []
    language: Annotated[str, Field(max_length=35, description="BCP 47, e.g. en, es")] = ""
    priority: Annotated[int, Field(ge=0, le=10, description="0 (normal) to 10 (most urgent)")] = 0
    attributes: Annotated[
        dict[str, Annotated[str, Field(max_length=1000)]], Field(max_length=50)
    ] = {}
    thread_id: Annotated[str, Field(max_length=500)] = ""
    received_at: UtcTime | None = None
    external_id: Annotated[str, Field(max_length=500)] = ""
    attachments: Annotated[list[AttachmentIn], Field(max_length=50)] = []
    site: Annotated[
        str,
        Field(
            max_length=MAX_SITE_LENGTH,
            description="In person: the store, branch or desk the customer is at; only agents "
            "of that site are offered the inquiry. Ignored on other channels.",
        ),
    ] = ""

    def to_proto(
        self, inquiry_id: str, now: float, skew_s: float | None = None
    ) -> inquiry_pb2.Inquiry:
        """The canonical event with `inquiry_id`; `received_at` is `now` when absent.

        With `skew_s`, a given `received_at` is clamped to within `skew_s` of `now`.
        """
        received = timestamp(now)
        if self.received_at is not None:
            received.FromDatetime(self.received_at)  # exact, unlike a float of seconds
            if skew_s is not None:
                given = received.seconds + received.nanos / 1e9
                if abs(given - now) > skew_s:
                    received = timestamp(clamp_received_at(given, now, skew_s))
        return inquiry_pb2.Inquiry(
            id=inquiry_id,
            workspace=self.workspace,
            channel=channel_value(self.channel),
            customer=inquiry_pb2.Customer(**self.customer.model_dump()),
            kind=kind_value(self.kind) if self.kind else inquiry_pb2.INQUIRY_KIND_UNSPECIFIED,
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
            received_at=received,
            external_id=self.external_id,
            attachments=[inquiry_pb2.Attachment(**a.model_dump()) for a in self.attachments],
            site=self.site,
        )


class BatchIn(_Model):
    """Several inquiries in one request; each is validated before any is published."""

    inquiries: Annotated[list[InquiryIn], Field(min_length=1)]


class AcceptedOut(BaseModel):
    """The broker holds the inquiry."""

    id: str
    duplicate: bool = Field(False, description="An earlier attempt already published it.")


class BatchOut(BaseModel):
    """One result per inquiry of the batch, in order."""

    results: list[AcceptedOut]


class ErrorOut(BaseModel):
    """What was wrong with the request."""

    error: str = Field(description="invalid, too_large, bad_signature, broker_unavailable, ...")
    message: str
    fields: list[dict[str, str]] = Field(
        default_factory=list, description="Each bad field (`field`) with its problem (`message`)."
    )


def channel_value(name: str) -> Any:
    """`Channel` enum value of a short name ("chat")."""
    return inquiry_pb2.Channel.Value("CHANNEL_" + name.upper())


def kind_value(name: str) -> Any:
    """`InquiryKind` enum value of a short name ("complaint")."""
    return inquiry_pb2.InquiryKind.Value("INQUIRY_KIND_" + name.upper())
