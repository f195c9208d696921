"""Bytes <-> TFDV protos, in the encodings TFDV and TFX write.

Statistics are written as a binary DatasetFeatureStatisticsList (TFX's FeatureStats.pb, read by
`tfdv.load_stats_binary`); reading also accepts TFDV's TFRecord-framed file (`tfdv.load_statistics`)
and text format. Schemas are schema.pbtxt text (see `schema`); anomalies are binary (TFX's
SchemaDiff.pb), with text accepted on read.
"""

from __future__ import annotations

import struct
from typing import TypeVar

from google.protobuf import message, text_format
from sluice_runtime.errors import InvalidArgument
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

_M = TypeVar("_M", bound=message.Message)


def statistics_to_bytes(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> bytes:
    return bytes(statistics.SerializeToString(deterministic=True))


def statistics_from_bytes(
    data: bytes, *, what: str = "statistics"
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Binary, TFRecord-framed (one record) or text DatasetFeatureStatisticsList."""
    return _parse(data, statistics_pb2.DatasetFeatureStatisticsList(), what)


def anomalies_from_bytes(data: bytes, *, what: str = "anomalies") -> anomalies_pb2.Anomalies:
    return _parse(data, anomalies_pb2.Anomalies(), what)


def _parse(data: bytes, target: _M, what: str) -> _M:
    record = _single_tfrecord(data)
    candidates = [record] if record is not None else []
    candidates.append(data)
    for candidate in candidates:
        try:
            target.ParseFromString(candidate)
        except message.DecodeError:
            target.Clear()
            continue
        return target
    try:
        text_format.Parse(data.decode("utf-8"), target)
    except (UnicodeDecodeError, text_format.ParseError):
        raise InvalidArgument(
            f"the {what} artifact is not a {target.DESCRIPTOR.name} (binary, TFRecord or text)",
            field=what,
            reason="BAD_ARTIFACT",
        ) from None
    return target


def _single_tfrecord(data: bytes) -> bytes | None:
    """The payload of a file holding exactly one TFRecord, else None.

    Framing: uint64 length, uint32 masked CRC of the length, payload, uint32 masked CRC. The CRCs
    are not checked (no crc32c here); the exact length match is what identifies the framing.
    """
    if len(data) < 16:
        return None
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + 4 + length + 4 != len(data):
        return None
    return data[12 : 12 + length]
