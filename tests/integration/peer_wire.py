"""A hand-written speaker of the peer protocol (replication/proto/lattice.proto, framed as in
docs/replication-wire.md): enough of it to play a hostile or impostor region in tests. Frames are
<u32 length LE><u32 CRC32C LE><payload>; payloads are protobuf Envelopes, encoded here by hand
(redis-py is all the test interpreter has)."""
import os
import re
import socket
import struct
import time


def _protocol_version():
    """kProtocolVersion as the server is built with it (read from its header, so a version bump
    does not leave this speaker behind)."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "replication",
                          "include", "lattice", "repl", "messages.h")
    with open(header, encoding="utf-8") as f:
        match = re.search(r"kProtocolVersion = (\d+);", f.read())
    if match is None:
        raise RuntimeError("kProtocolVersion not found in " + header)
    return int(match.group(1))


PROTOCOL_VERSION = _protocol_version()


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(value):
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def field(number, wire_type, payload):
    """One protobuf field: a varint (wire type 0), fixed64 (1) or length-delimited (2)."""
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + varint(payload)
    if wire_type == 1:
        return key + struct.pack("<Q", payload)
    return key + varint(len(payload)) + payload


def vector(entries):
    """A VersionVector from {replica: seq} (sorted by replica, packed repeated fields)."""
    replicas = sorted(entries)
    if not replicas:
        return b""
    return (field(1, 2, b"".join(struct.pack("<Q", r) for r in replicas)) +
            field(2, 2, b"".join(varint(entries[r]) for r in replicas)))


def frame(payload):
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


def hello(shard, replica, region, applied=None):
    body = (field(1, 2, shard.encode()) + field(2, 1, replica) + field(3, 2, region.encode()) +
            field(4, 0, PROTOCOL_VERSION) + field(5, 2, vector(applied or {})))
    return frame(field(1, 2, body))


def ack(applied):
    return frame(field(3, 2, field(1, 2, vector(applied))))


def heartbeat(sender_time_ms, applied, connected=()):
    zigzag = sender_time_ms << 1 if sender_time_ms >= 0 else (-sender_time_ms << 1) - 1
    body = field(1, 0, zigzag) + field(2, 2, vector(applied))
    if connected:
        body += field(3, 2, b"".join(struct.pack("<Q", r) for r in sorted(connected)))
    return frame(field(4, 2, body))


def closed_within(sock, timeout):
    """True if the other end closes `sock` within `timeout` s (what it sends is read and
    dropped), False if it is still open then."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
