"""The Delta protocol the published marts keep, so readers other than Spark can open them.

delta-rs (the `deltalake` package) and Power BI's Delta Lake connector read reader version 1 tables
without table features. Delta 4.4 creates tables at reader 1 / writer 2 unless a feature is turned
on (deletion vectors, column mapping, ...), which would raise the reader version and lock those
readers out; publication sets no table property today because none is needed. Should a default
change, `check_reader_protocol` (run on every mart by tests/bi/test_delta_readers.py) says so, and
the properties that turn the feature off (e.g. delta.enableDeletionVectors=false) belong in publish.
"""

from __future__ import annotations

from dataclasses import dataclass

# Reader 1 / writer 2: no table features. Readers that do not know a feature must refuse the table.
MAX_READER_VERSION = 1
MAX_WRITER_VERSION = 2


class UnsupportedProtocol(RuntimeError):
    """A gold table needs a newer Delta reader than BI readers have."""


@dataclass(frozen=True)
class Protocol:
    min_reader_version: int
    min_writer_version: int
    reader_features: tuple[str, ...]
    writer_features: tuple[str, ...]

    def __str__(self) -> str:
        features = ", ".join(self.reader_features + self.writer_features) or "no table features"
        return f"reader {self.min_reader_version} / writer {self.min_writer_version} ({features})"


def read_protocol(path: str, storage_options: dict[str, str] | None = None) -> Protocol:
    """The table's protocol as delta-rs reads it: a local path, or an object store's with its storage
    options (`jobs.storage.delta_rs_location` gives both for a warehouse's table)."""
    from deltalake import DeltaTable

    protocol = DeltaTable(path, storage_options=storage_options or None).protocol()
    return Protocol(
        protocol.min_reader_version,
        protocol.min_writer_version,
        tuple(protocol.reader_features or ()),
        tuple(protocol.writer_features or ()),
    )


def check_reader_protocol(path: str, storage_options: dict[str, str] | None = None) -> Protocol:
    protocol = read_protocol(path, storage_options)
    if (
        protocol.min_reader_version > MAX_READER_VERSION
        or protocol.min_writer_version > MAX_WRITER_VERSION
        or protocol.reader_features
        or protocol.writer_features
    ):
        raise UnsupportedProtocol(
            f"{path} needs Delta {protocol}; BI readers (delta-rs, Power BI) are promised reader "
            f"{MAX_READER_VERSION} / writer {MAX_WRITER_VERSION} without table features"
        )
    return protocol
