"""The container bytes of the shipped models stay fixed through refactors.

The SHA-256 of the containers of one generated image, for both shipped models at q1
and q4. The zero-padded ones were recorded before the restructuring of issue 15 and are
still the bytes of every earlier release; the edge-padded ones (the default since issue 17)
were recorded when edge padding was introduced. A deliberate codec or weight change updates
them in the same commit and says why in its message.

These are the bytes of the reference layout (versions 1 and 2, ``layout="reference"``). The
compact layout (versions 3 and 4, the default since this test's second table was recorded) has
its own table, recorded on an AVX2-only AMD EPYC only: elsewhere that test skips, and the round
trips of ``test_codec.py`` check the compact layout on every CPU.

The bytes depend on the CPU's kernels as well: where PyTorch runs its AVX2 kernels (an
AVX2-only CPU) the transforms sum in another order, and for one of these containers a latent
rounds the other way. Those containers have their own hashes (``ON_AVX2``), recorded on an
AVX2-only AMD EPYC from the code and weights of commit 49e0e82.

On an AVX-512 Intel Xeon (Sapphire Rapids) the AVX2 kernels can be forced for a check:
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 MKL_CBWR=AVX2
pytest tests/codec/test_container_bytes.py`` reproduces every compact-layout hash recorded on
the EPYC; the one reference-layout ``ON_AVX2`` hash it reproduces with two PyTorch threads only
(the tests run one), so that test fails there and passes on the EPYC.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
from helpers import random_image

from gabic import codec, zoo

EXPECTED_ZERO_PAD = {
    ("gabic-small", 1): "81576852e1cd7a026f40b8af15b737502193da9941fbb3a143650709a1463957",
    ("gabic-small", 4): "e749f8bc263a4c40cc00e548bfac241bf96b690e36402cfc6a9cf3eeafcbfb53",
    ("zou2022-small", 1): "66daf8323edd90666762d7a0d6dc84704dd124e8e3d576b7fb35eb3b1ed3b386",
    ("zou2022-small", 4): "9e4f0c23973f13f00d50e16691e5e4e7c925d60497d6288b5c36aed54a892b45",
}


EXPECTED_EDGE_PAD = {
    ("gabic-small", 1): "60910258d2e83860a778fde90df41c7434fd78bbd234611b5f3a53d3cfc8fd4e",
    ("gabic-small", 4): "c7d0e9cb905d89c9094963c6a0b8a0ba7e5354eeeb2952efb2642c5848cabafe",
    ("zou2022-small", 1): "19bc790cff48ff41548c9e54938c1a0146811f1c54486d1e0dd266950e0c7c3e",
    ("zou2022-small", 4): "35bd9e04da820349d95dd2fb23f790217cdca43ba39a84cb95b4c47060efd1f9",
}


#: (model, quality, padding) -> SHA-256 where ``torch.backends.cpu.get_cpu_capability()`` is "AVX2"
ON_AVX2 = {
    ("zou2022-small", 1, "edge"): "ef33de74fc9b70d1cfab9e9804e47fc8f6fdbd3ef1326136d2ae14670f109aca",
}


@pytest.mark.parametrize("pad,expected", [("zero", EXPECTED_ZERO_PAD), ("edge", EXPECTED_EDGE_PAD)])
@pytest.mark.parametrize("name,quality", sorted(EXPECTED_ZERO_PAD))
def test_container_sha256_is_unchanged(name: str, quality: int, pad: str, expected: dict) -> None:
    if not zoo.shipped_path(name, quality).is_file():
        pytest.fail(f"{name} q{quality} is not in assets/weights")
    model = zoo.load(name, quality, device="cpu")
    data = codec.compress(model, random_image(80, 136, seed=7), pad=pad, layout="reference")
    want = expected[(name, quality)]
    if torch.backends.cpu.get_cpu_capability() == "AVX2":
        want = ON_AVX2.get((name, quality, pad), want)
    assert hashlib.sha256(data).hexdigest() == want


#: (model, quality) -> SHA-256 of the compact-layout container (edge padding), AVX2 kernels
COMPACT_ON_AVX2 = {
    ("gabic-small", 1): "c4beac45a3c54fa6e75c2432e853a18fe2d59966c8d4f4df76d71170d9da3a2e",
    ("gabic-small", 4): "6c34a0188908d4df634db3ab1cf80ed8b0b46871da91852adb1f4bacbc9a840c",
    ("zou2022-small", 1): "9ccdd283ce8aa1b6bbcb879b99a97d62f5cbb6cdd779ceed6302ff9578270b8f",
    ("zou2022-small", 4): "6f22920f66bfecd65b6b4b15328832ae1599966306a17d32d9aaaf402cf840c1",
}


@pytest.mark.parametrize("name,quality", sorted(COMPACT_ON_AVX2))
def test_compact_container_sha256_is_unchanged(name: str, quality: int) -> None:
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        pytest.skip("the compact-layout hashes were recorded with AVX2 kernels only")
    model = zoo.load(name, quality, device="cpu")
    data = codec.compress(model, random_image(80, 136, seed=7))
    assert data[4] in codec.COMPACT_VERSIONS.values()
    assert hashlib.sha256(data).hexdigest() == COMPACT_ON_AVX2[(name, quality)]
