"""ONNX files read and edited as protobuf wire data, without the onnx package.

Field numbers of onnx.proto3 used here and by the callers: ModelProto.graph 7;
GraphProto.initializer 5, .input 11; TensorProto.dims 1, .data_type 2, .float_data 4,
.int64_data 7, .name 8, .raw_data 9. Every field not touched is copied as it is.
"""
from __future__ import annotations

import numpy as np

FLOAT = 1  # TensorProto.DataType.FLOAT


def readvarint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # a negative int64 as protobuf writes it: ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def pb_fields(buf: bytes) -> list[list]:
    """A message's fields in order, each [number, wire type, int or bytes]."""
    out, i = [], 0
    while i < len(buf):
        key, i = readvarint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = readvarint(buf, i)
        elif wire == 2:
            n, i = readvarint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"protobuf wire type {wire} is not used by ONNX")
        out.append([number, wire, value])
    if i != len(buf):
        raise ValueError("truncated protobuf message")
    return out


def pb_bytes(fields: list[list]) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += varint(number << 3 | wire)
        out += varint(value) if wire == 0 else (varint(len(value)) + value if wire == 2 else value)
    return bytes(out)


def pb_one(fields: list[list], number: int) -> list:
    found = [f for f in fields if f[0] == number and f[1] == 2]
    if len(found) != 1:
        raise ValueError(f"expected one message field {number}, found {len(found)}")
    return found[0]


def int64s(tensor: list[list]) -> list[int]:
    out = []
    for number, wire, value in tensor:
        if number == 7 and wire == 2:  # packed
            i = 0
            while i < len(value):
                v, i = readvarint(value, i)
                out.append(v - (1 << 64) if v >= 1 << 63 else v)
        elif number == 7 and wire == 0:
            out.append(value - (1 << 64) if value >= 1 << 63 else value)
    return out


def float_initializers(model: bytes) -> dict[str, np.ndarray]:
    """The graph's float32 initializers (weights, biases, scalars) by name, as numpy arrays."""
    graph = pb_fields(pb_one(pb_fields(model), 7)[2])
    out = {}
    for number, wire, value in graph:
        if number != 5 or wire != 2:
            continue
        dims, name, dtype, data = [], None, None, None
        for n, w, v in pb_fields(value):
            if n == 1 and w == 0:
                dims.append(v)
            elif n == 1 and w == 2:  # packed dims
                i = 0
                while i < len(v):
                    d, i = read_varint(v, i)
                    dims.append(d)
            elif n == 2:
                dtype = v
            elif n == 8:
                name = v.decode()
            elif n in (4, 9) and w == 2:  # packed float_data or raw_data: little-endian float32 either way
                data = v
        if dtype == FLOAT and name is not None:
            arr = np.frombuffer(data or b"", "<f4")
            if arr.size != int(np.prod(dims, dtype=np.int64)):
                raise ValueError(f"initializer {name}: {arr.size} values for shape {dims}")
            out[name] = arr.reshape(dims).astype(np.float32)
    return out
