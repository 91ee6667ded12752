"""Real bitstreams: exact round trip, rate vs likelihoods, container header, k, errors."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import pytest
import torch
from helpers import TINY_CONFIG, random_image, tiny_codecs
from PIL import Image

from gabic import codec, zoo
from gabic.codec.images import image_to_tensor
from gabic.layers import GraphWindowBlock
from gabic.models import GABIC, build_model

#: (width, height): one pixel; padding inside one 64-px block; padding with latent cells left out
#: of the stream on both sides (compact layout); no padding. Real photo sizes (481×321, 768×512)
#: are round-tripped by the slow property test of tests/robustness/test_determinism.py.
SIZES = [(1, 1), (17, 33), (200, 134), (256, 192)]
#: Container header + rANS flush of the two streams: allowed on top of the 1 % rate margin.
OVERHEAD_BYTES = 64


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return tiny_codecs(5)


def forward_reconstruction(
    model, x: torch.Tensor, layout: str = "compact"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eval-mode forward on the padded image with the layout's coded cells, cropped back and
    clamped (what decode returns)."""
    height, width = x.shape[-2:]
    layout = codec.written_layout(height, width, layout)
    padded, unpad = codec.pad_image(x, layout=layout)
    with torch.no_grad():
        out = model(padded, coded_cells=codec.coded_cells(height, width, layout))
    return codec.crop_image(out["x_hat"], unpad).clamp(0, 1), out["likelihoods"]


@pytest.mark.parametrize("layout", codec.LAYOUTS)
@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_round_trip_equals_forward_and_rate_matches_likelihoods(models, arch, width, height, layout):
    model = models[arch]
    x = image_to_tensor(random_image(height, width, seed=width))
    data, likelihoods = codec.encode_tensor(model, x, with_likelihoods=True, layout=layout)
    decoded = codec.decompress_tensor(data, model)
    expected, forward_likelihoods = forward_reconstruction(model, x, layout)
    assert decoded.shape == (1, 3, height, width)
    assert torch.equal(decoded, expected)
    assert torch.equal(codec.forward_reconstruction(model, x, layout=layout), expected)
    for name in ("y", "z"):
        assert torch.equal(likelihoods[name], forward_likelihoods[name])
    estimated_bits = sum(float((-torch.log2(v)).sum()) for v in likelihoods.values())
    assert len(data) * 8 <= estimated_bits * 1.01 + OVERHEAD_BYTES * 8
    # rANS cannot beat the model's own estimate by more than rounding of its tables
    header = codec.read_header(data)
    assert (header.z_length + header.y_length) * 8 >= estimated_bits * 0.99


def test_public_api_with_pil_and_path(models, tmp_path):
    image = random_image(40, 70, seed=3)
    path = tmp_path / "in.png"
    image.save(path)
    data = codec.compress(models["gabic"], image)
    assert codec.compress(models["gabic"], path) == data
    assert codec.compress(models["gabic"], path.read_bytes()) == data
    out = codec.decompress(data, models["gabic"])
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (70, 40)
    expected, _ = forward_reconstruction(models["gabic"], image_to_tensor(image))
    assert torch.equal(image_to_tensor(out), (expected * 255).round() / 255)


def test_header_fields(models):
    model = models["gabic"]
    data = codec.compress(model, random_image(30, 50))
    header = codec.read_header(data)
    assert data[:4] == codec.MAGIC and data[4] == codec.COMPACT_VERSIONS[codec.FORMAT_VERSION]
    assert header.layout == "compact" and not header.variable_rate
    assert (header.width, header.height) == (50, 30)
    assert header.model_id == "gabic" and header.quality == 0 and header.k == model.k
    assert header.fingerprint == codec.model_fingerprint(model)
    assert header.latent_shape == (1, 1)
    assert len(data) == header.header_size + header.z_length + header.y_length
    zou = codec.read_header(codec.compress(models["zou2022"], random_image(30, 50)))
    assert zou.k == 0 and zou.model_id == "zou2022"


def test_same_image_gives_identical_bytes(models):
    image = random_image(100, 90, seed=8)
    for model in models.values():
        assert codec.compress(model, image) == codec.compress(model, image)


def test_k_is_stored_and_used_by_the_decoder(models, monkeypatch):
    model = models["gabic"]
    x = image_to_tensor(random_image(128, 128, seed=2))
    k3, k12 = codec.with_k(model, 3), codec.with_k(model, 12)
    data = codec.compress_tensor(k3, x)
    expected_k3, _ = forward_reconstruction(k3, x)
    expected_k12, _ = forward_reconstruction(k12, x)
    assert codec.read_header(data).k == 3
    set_k = GABIC.set_k

    def set_k_of_others_only(self, k):
        assert self is not k12, "the decoder must not change the caller's k, not even for a while"
        set_k(self, k)

    monkeypatch.setattr(GABIC, "set_k", set_k_of_others_only)
    decoded = codec.decompress_tensor(data, k12)
    assert k12.k == 12 and model.k == TINY_CONFIG.k
    assert torch.equal(decoded, expected_k3)
    assert not torch.equal(expected_k3, expected_k12)  # k changes the decoder's output


def test_with_k_copies_only_when_k_differs(models):
    model = models["gabic"]
    assert codec.with_k(model, model.k) is model
    other = codec.with_k(model, 4)
    assert other is not model and other.k == 4 and model.k == TINY_CONFIG.k
    assert (other.model_id, other.quality, other.config) == (model.model_id, model.quality, model.config)
    graph_blocks = {path for path, module in model.named_modules() if isinstance(module, GraphWindowBlock)}
    assert len(graph_blocks) == 4
    for (name, mine), theirs in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        in_graph_block = any(name.startswith(path + ".") for path in graph_blocks)
        # the graph blocks (where k lives) are the copy's own; every other tensor is shared
        assert torch.equal(mine, theirs) and (mine.data_ptr() != theirs.data_ptr()) == in_graph_block, name
    assert all(a.k == 4 for a in other.graph_operators()) and all(
        a.k == model.k for a in model.graph_operators()
    )
    with pytest.raises(ValueError, match="1..15"):
        codec.with_k(model, 16)
    with pytest.raises(ValueError, match="GABIC only"):
        codec.with_k(models["zou2022"], 3)


def test_corrupted_k_in_header_is_refused(models):
    data = bytearray(codec.compress(models["gabic"], random_image(8, 8)))
    name_length = data[5]
    data[7 + name_length] = 99  # k
    body = bytes(data[: 32 + name_length]) + bytes(data[36 + name_length :])
    struct.pack_into(">I", data, 32 + name_length, zlib.crc32(body))
    with pytest.raises(codec.BitstreamError, match="k=99"):
        codec.decompress(bytes(data), models["gabic"])


def test_container_from_another_model_is_refused_with_its_name(use_random_weights):
    q1 = zoo.load("gabic-small", 1, device="cpu")
    q2 = zoo.load("gabic-small", 2, device="cpu")
    zou = zoo.load("zou2022-small", 1, device="cpu")
    data = codec.compress(q1, random_image(20, 20))
    assert codec.read_header(data).model_id == "gabic-small"
    with pytest.raises(codec.BitstreamError, match=r"another model \(gabic-small q1\).*gabic-small q2"):
        codec.decompress(data, q2)
    with pytest.raises(codec.BitstreamError, match=r"gabic-small q1.*zou2022-small q1"):
        codec.decompress(data, zou)
    # without a model, the container's own model is loaded
    assert codec.decompress(data).size == (20, 20)


def test_decompress_without_model_for_unshipped_weights(models):
    data = codec.compress(models["gabic"], random_image(8, 8))
    with pytest.raises(codec.BitstreamError, match="not a shipped model"):
        codec.decompress(data)


def test_codec_size_limit_is_checked_before_any_work(models):
    too_big = torch.zeros(1, 3, 1, 1).expand(1, 3, 2161, 3840)  # no memory behind it
    assert codec.MAX_CODEC_PIXELS < 2161 * 3840
    with pytest.raises(ValueError, match="codec limit"):
        codec.compress_tensor(models["gabic"], too_big)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        codec.compress_tensor(models["gabic"], torch.zeros(3, 8, 8))


def test_fingerprint_changes_with_weights():
    torch.manual_seed(0)
    a = build_model("gabic", TINY_CONFIG)
    torch.manual_seed(1)
    b = build_model("gabic", TINY_CONFIG)
    assert codec.model_fingerprint(a) != codec.model_fingerprint(b)
    assert len(codec.model_fingerprint(a)) == 8


def _recomputed_fingerprint(model) -> bytes:
    """The fingerprint's definition, written out (no cache)."""
    import hashlib

    digest = hashlib.sha256(model.arch.encode())
    for name, tensor in sorted(model.state_dict().items()):
        if not name.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table")):
            digest.update(name.encode() + tensor.to(torch.float32).numpy().tobytes())
    return digest.digest()[:8]


def test_fingerprint_follows_the_current_weights():
    torch.manual_seed(2)
    model = build_model("zou2022", TINY_CONFIG).eval()
    attributes = set(vars(model))
    first = codec.model_fingerprint(model)
    assert first == _recomputed_fingerprint(model) == codec.model_fingerprint(model)
    assert set(vars(model)) == attributes  # nothing is cached on the model
    with torch.no_grad():  # a weight changed in place
        model.g_a[0].weight[0, 0, 0, 0] += 1
    changed = codec.model_fingerprint(model)
    assert changed != first and changed == _recomputed_fingerprint(model)
    other = build_model("zou2022", TINY_CONFIG)
    model.load_state_dict(other.state_dict())  # all weights replaced
    assert codec.model_fingerprint(model) == codec.model_fingerprint(other) == _recomputed_fingerprint(other)
    model.update(force=True)  # the coder's tables are not part of it
    assert codec.model_fingerprint(model) == _recomputed_fingerprint(other)


def test_fingerprint_is_kept_for_the_tensors_not_their_addresses(monkeypatch: pytest.MonkeyPatch):
    """Models sharing their tensors (``with_quality``) hash the weights once; a model whose
    tensors look like those of a cached entry (as after a freed model's memory is reused) but are
    other objects is hashed again."""
    from gabic.codec import container

    hashed = []
    original = container.hashlib.sha256
    monkeypatch.setattr(container.hashlib, "sha256", lambda data: hashed.append(1) or original(data))
    config = dataclasses.replace(TINY_CONFIG, rate_levels=4)
    base = build_model("zou2022", config, quality=2).eval()
    first = codec.model_fingerprint(base)
    assert codec.model_fingerprint(codec.with_quality(base, 3.5)) == first and len(hashed) == 1
    other = build_model("zou2022", config, quality=2).eval()
    signature, _ = container._signature(other)
    refs, _ = container._FINGERPRINTS[container._signature(base)[0]]
    # an entry that looks like other's tensors but holds base's
    monkeypatch.setitem(container._FINGERPRINTS, signature, (refs, b"stale!!!"))
    found = codec.model_fingerprint(other)
    assert len(hashed) == 2 and found == _recomputed_fingerprint(other)


def test_decoding_refuses_a_model_whose_weights_changed_after_encoding():
    model = tiny_codecs(7)["gabic"]
    data = codec.compress(model, random_image(16, 16))
    with torch.no_grad():
        model.g_s[1].weight.mul_(1.01)
    with pytest.raises(codec.BitstreamError, match="another model"):
        codec.decompress(data, model)
