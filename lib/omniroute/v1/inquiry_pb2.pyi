import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_VOICE: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_CHAT: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_SOCIAL: _ClassVar[Channel]
    CHANNEL_FAX: _ClassVar[Channel]
    CHANNEL_POSTAL_MAIL: _ClassVar[Channel]
    CHANNEL_IN_PERSON: _ClassVar[Channel]

class InquiryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INQUIRY_KIND_UNSPECIFIED: _ClassVar[InquiryKind]
    INQUIRY_KIND_QUESTION: _ClassVar[InquiryKind]
    INQUIRY_KIND_REQUEST: _ClassVar[InquiryKind]
    INQUIRY_KIND_COMPLAINT: _ClassVar[InquiryKind]
    INQUIRY_KIND_ORDER: _ClassVar[InquiryKind]
    INQUIRY_KIND_RETURN: _ClassVar[InquiryKind]
    INQUIRY_KIND_SERVICE_PROBLEM: _ClassVar[InquiryKind]
    INQUIRY_KIND_CANCELLATION: _ClassVar[InquiryKind]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_VOICE: Channel
CHANNEL_EMAIL: Channel
CHANNEL_CHAT: Channel
CHANNEL_SMS: Channel
CHANNEL_SOCIAL: Channel
CHANNEL_FAX: Channel
CHANNEL_POSTAL_MAIL: Channel
CHANNEL_IN_PERSON: Channel
INQUIRY_KIND_UNSPECIFIED: InquiryKind
INQUIRY_KIND_QUESTION: InquiryKind
INQUIRY_KIND_REQUEST: InquiryKind
INQUIRY_KIND_COMPLAINT: InquiryKind
INQUIRY_KIND_ORDER: InquiryKind
INQUIRY_KIND_RETURN: InquiryKind
INQUIRY_KIND_SERVICE_PROBLEM: InquiryKind
INQUIRY_KIND_CANCELLATION: InquiryKind

class Customer(_message.Message):
    __slots__ = ("id", "name", "contact_address", "language", "segment")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    contact_address: str
    language: str
    segment: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., contact_address: _Optional[str] = ..., language: _Optional[str] = ..., segment: _Optional[str] = ...) -> None: ...

class SkillRequirement(_message.Message):
    __slots__ = ("name", "min_proficiency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_PROFICIENCY_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_proficiency: int
    def __init__(self, name: _Optional[str] = ..., min_proficiency: _Optional[int] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("name", "content_type", "size_bytes", "uri")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    name: str
    content_type: str
    size_bytes: int
    uri: str
    def __init__(self, name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., uri: _Optional[str] = ...) -> None: ...

class Inquiry(_message.Message):
    __slots__ = ("id", "workspace", "channel", "customer", "kind", "subject", "body", "required_skills", "language", "priority", "attributes", "thread_id", "received_at", "external_id", "attachments", "site")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SKILLS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    channel: Channel
    customer: Customer
    kind: InquiryKind
    subject: str
    body: str
    required_skills: _containers.RepeatedCompositeFieldContainer[SkillRequirement]
    language: str
    priority: int
    attributes: _containers.ScalarMap[str, str]
    thread_id: str
    received_at: _timestamp_pb2.Timestamp
    external_id: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    site: str
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., kind: _Optional[_Union[InquiryKind, str]] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., required_skills: _Optional[_Iterable[_Union[SkillRequirement, _Mapping]]] = ..., language: _Optional[str] = ..., priority: _Optional[int] = ..., attributes: _Optional[_Mapping[str, str]] = ..., thread_id: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., external_id: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., site: _Optional[str] = ...) -> None: ...
