"""Hostile and damaged containers: a clear BitstreamError in bounded time, never a crash."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from helpers import random_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gabic import codec

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@pytest.fixture(scope="module")
def small_file(tiny_models) -> bytes:
    return codec.compress(tiny_models["gabic"], random_image(1, 1, seed=4))


def reseal(data: bytes) -> bytes:
    """Recompute the CRC of a (modified) container, as an attacker would."""
    name_length = data[5]
    crc_at = 32 + name_length
    body = data[:crc_at] + data[crc_at + 4 :]
    return data[:crc_at] + struct.pack(">I", zlib.crc32(body)) + data[crc_at + 4 :]


def with_fields(data: bytes, **fields: int) -> bytes:
    """Change fixed header fields (quality, k, width, height, len_z, len_y) and reseal."""
    name_length = data[5]
    offsets = {"quality": (6, ">B"), "k": (7, ">B"), "width": (16, ">I"), "height": (20, ">I"),
               "len_z": (24, ">I"), "len_y": (28, ">I")}  # fmt: skip
    out = bytearray(data)
    for name, value in fields.items():
        offset, fmt = offsets[name]
        struct.pack_into(fmt, out, offset + name_length, value)
    return reseal(bytes(out))


def test_the_small_file_decodes(small_file, tiny_models):
    assert codec.decompress(small_file, tiny_models["gabic"]).size == (1, 1)
    assert len(small_file) < 200


def test_truncated_at_every_byte_offset(small_file, tiny_models):
    for end in range(len(small_file)):
        with pytest.raises(codec.BitstreamError):
            codec.decompress(small_file[:end], tiny_models["gabic"])


@FAST
@given(data=st.data())
def test_flipped_bytes_are_reported(small_file, tiny_models, data):
    position = data.draw(st.integers(0, len(small_file) - 1))
    mask = data.draw(st.integers(1, 255))
    damaged = bytearray(small_file)
    damaged[position] ^= mask
    with pytest.raises(codec.BitstreamError):
        codec.decompress(bytes(damaged), tiny_models["gabic"])


def test_payload_corruption_is_reported_as_checksum_mismatch(small_file, tiny_models):
    damaged = bytearray(small_file)
    damaged[-1] ^= 0x10
    with pytest.raises(codec.BitstreamError, match="checksum"):
        codec.decompress(bytes(damaged), tiny_models["gabic"])


@FAST
@given(garbage=st.binary(max_size=300))
def test_garbage_bytes(tiny_models, garbage):
    with pytest.raises(codec.BitstreamError):
        codec.decompress(garbage, tiny_models["gabic"])
    with pytest.raises(codec.BitstreamError):
        codec.decompress(codec.MAGIC + bytes([codec.FORMAT_VERSION]) + garbage, tiny_models["gabic"])


def test_wrong_magic_and_version(small_file, tiny_models):
    with pytest.raises(codec.BitstreamError, match="magic"):
        codec.decompress(b"PNG!" + small_file[4:], tiny_models["gabic"])
    for version in (0, 5, 255):
        data = small_file[:4] + bytes([version]) + small_file[5:]
        with pytest.raises(codec.BitstreamError, match=f"version {version}"):
            codec.decompress(data, tiny_models["gabic"])
    # version 2 exists (variable-rate models): a one-rate file relabelled as 2 no longer parses
    with pytest.raises(codec.BitstreamError):
        codec.decompress(small_file[:4] + bytes([2]) + small_file[5:], tiny_models["gabic"])
    with pytest.raises(codec.BitstreamError, match="expected bytes"):
        codec.decompress("GABC", tiny_models["gabic"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"width": 0}, "image size"),
        ({"height": 0}, "image size"),
        ({"width": 2**32 - 1, "height": 2**32 - 1}, "image size"),
        ({"width": 100_000, "height": 100_000}, "image size"),
        ({"len_y": 2**32 - 1}, "truncated"),
        ({"len_z": 2**31}, "truncated"),
        ({"len_z": 0}, "unexpected bytes"),
        ({"k": 0}, "k=0"),
        ({"k": 200}, "k=200"),
    ],
)
def test_header_claiming_absurd_values(small_file, tiny_models, fields, message):
    with pytest.raises(codec.BitstreamError, match=message):
        codec.decompress(with_fields(small_file, **fields), tiny_models["gabic"])


def test_model_id_length(small_file, tiny_models):
    for length in (0, 65, 255):
        data = small_file[:5] + bytes([length]) + small_file[6:]
        with pytest.raises(codec.BitstreamError, match="model id length"):
            codec.decompress(data, tiny_models["gabic"])
    bad_utf8 = bytearray(small_file)
    bad_utf8[6] = 0xFF
    with pytest.raises(codec.BitstreamError, match="UTF-8"):
        codec.decompress(reseal(bytes(bad_utf8)), tiny_models["gabic"])


def test_container_of_another_model(tiny_models, small_file):
    with pytest.raises(codec.BitstreamError, match="another model"):
        codec.decompress(small_file, tiny_models["zou2022"])


def test_overlong_stream_is_refused(small_file, tiny_models):
    header = codec.read_header(small_file)
    start = header.header_size
    z = small_file[start : start + header.z_length]
    y = b"\xff" * 100_000
    data = with_fields(small_file[:start] + z + y, len_y=len(y))
    with pytest.raises(codec.BitstreamError, match="longer than any valid stream"):
        codec.decompress(data, tiny_models["gabic"])


CRAFTED = textwrap.dedent("""
    import struct, sys, zlib
    sys.path.insert(0, "tests")
    import torch
    torch.set_num_threads(1)
    from helpers import TINY_CONFIG, random_image
    from gabic import codec
    from gabic.models import build_model

    def reseal(data):
        n = data[5]; at = 32 + n
        body = data[:at] + data[at + 4:]
        return data[:at] + struct.pack(">I", zlib.crc32(body)) + data[at + 4:]

    torch.manual_seed(0)
    model = build_model("gabic", TINY_CONFIG).eval()
    model.update(force=True)
    outcomes = []
    for width, height in [(1, 1), (100, 70)]:
        data = codec.compress(model, random_image(height, width))
        header = codec.read_header(data)
        n, start = data[5], header.header_size
        y_symbols = TINY_CONFIG.M * 16 * header.latent_shape[0] * header.latent_shape[1]
        z_symbols = TINY_CONFIG.hyper_channels * header.latent_shape[0] * header.latent_shape[1]
        y_cap = codec.MAX_STREAM_BYTES_PER_SYMBOL * y_symbols + codec.STREAM_SLACK
        z_cap = codec.MAX_STREAM_BYTES_PER_SYMBOL * z_symbols + codec.STREAM_SLACK
        patterns = {
            "ff": lambda size: b"\\xff" * size,
            "small words": lambda size: (b"\\x0f\\x00\\x00\\x00" * size)[:size],
            "zeros": lambda size: bytes(size),
            "random": lambda size: torch.randint(0, 256, (size,), generator=torch.Generator().manual_seed(size),
                                                dtype=torch.uint8).numpy().tobytes(),
        }
        for name, make in patterns.items():
            for z_len, y_len in [(header.z_length, y_cap), (z_cap, header.y_length), (header.z_length, 100_000),
                                 (8, 8), (0, 0)]:
                z = make(z_len) if z_len != header.z_length else data[start:start + z_len]
                y = make(y_len) if y_len != header.y_length else data[start + header.z_length:]
                fixed = bytearray(data[:start])
                struct.pack_into(">II", fixed, 24 + n, len(z), len(y))
                try:
                    image = codec.decompress(reseal(bytes(fixed) + z + y), model)
                    outcomes.append(f"decoded {image.size}")
                except codec.BitstreamError as error:
                    outcomes.append("BitstreamError")
                print(width, name, z_len, y_len, outcomes[-1], flush=True)
    print("ALL DONE", len(outcomes))
""")


@pytest.mark.slow  # a child process that imports PyTorch: several seconds
def test_crafted_streams_with_valid_checksum_never_crash_the_process():
    """An attacker can recompute the CRC. CompressAI's rANS decoder has no bounds checks, so
    such streams run in a child process: it must finish normally (image or BitstreamError)."""
    done = subprocess.run([sys.executable, "-c", CRAFTED], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == 0, (
        f"decoder crashed (rc {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
    assert "ALL DONE 40" in done.stdout
