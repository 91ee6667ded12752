"""The library on a CUDA GPU: same numbers as the CPU, exact round trip on the GPU, training steps.

Skipped where PyTorch sees no GPU (CI and most users); run on a GPU machine with
``python -m pytest tests/cuda/test_cuda.py``.
"""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_CONFIG, random_image, tiny_codecs

from gabic import codec
from gabic.codec.images import image_to_tensor
from gabic.layers import GraphWindowBlock

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return tiny_codecs(11)


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_forward_on_gpu_matches_cpu(models, arch):
    model = models[arch]
    x = image_to_tensor(random_image(128, 192, seed=2))  # forward takes multiples of 64
    with torch.no_grad():
        cpu = model(x)
        gpu_model = tiny_codecs(11)[arch].cuda()
        gpu = gpu_model(x.cuda())
    torch.testing.assert_close(gpu["x_hat"].cpu(), cpu["x_hat"], atol=2e-3, rtol=0)
    for name in ("y", "z"):
        torch.testing.assert_close(
            gpu["likelihoods"][name].cpu(), cpu["likelihoods"][name], atol=2e-3, rtol=1e-2
        )


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_round_trip_on_gpu_is_exact(arch):
    model = tiny_codecs(11)[arch].cuda()
    x = image_to_tensor(random_image(77, 130, seed=4))
    data = codec.compress_tensor(model, x)
    decoded = codec.decompress_tensor(data, model)
    assert torch.equal(codec.decompress_tensor(data, model), decoded)
    padded, unpad = codec.pad_image(x.cuda())
    cells = codec.coded_cells(77, 130)  # on the CPU: the model moves it
    with torch.no_grad(), codec.exact_kernels():
        expected = codec.crop_image(model(padded, coded_cells=cells)["x_hat"], unpad).clamp(0, 1)
    assert torch.equal(decoded.to(expected.device), expected)


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_gpu_stream_decodes_on_cpu(arch):
    """Bitstreams cross devices: a GPU-encoded image decodes on the CPU to the same picture
    (up to float rounding of the synthesis), and the CPU-encoded one to the same bytes."""
    gpu_model, cpu_model = tiny_codecs(11)[arch].cuda(), tiny_codecs(11)[arch]
    x = image_to_tensor(random_image(64, 96, seed=6))
    from_gpu = codec.compress_tensor(gpu_model, x)
    from_cpu = codec.compress_tensor(cpu_model, x)
    assert from_gpu == from_cpu
    on_cpu = codec.decompress_tensor(from_gpu, cpu_model)
    on_gpu = codec.decompress_tensor(from_gpu, gpu_model).cpu()
    assert (on_cpu - on_gpu).abs().max() < 1e-3


def test_graph_paths_agree_on_gpu():
    torch.manual_seed(0)
    block = GraphWindowBlock(16, 2, 8, 9).cuda()
    x = torch.randn(2, 16, 19, 21, device="cuda")
    with torch.no_grad():
        dense = block(x)
        block.conv.implementation = "pyg"
        pyg = block(x)
    torch.testing.assert_close(dense, pyg, atol=1e-4, rtol=1e-4)


def test_training_steps_on_gpu(tmp_path):
    import json

    from gabic.train import cli as train

    data = tmp_path / "train"
    data.mkdir()
    for i in range(3):
        random_image(80, 96, seed=i).save(data / f"{i}.png")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG.to_dict()))
    out = tmp_path / "run"
    argv = ["--arch", "gabic", "--config", str(config), "--lmbda", "0.01", "--train-dir", str(data),
            "--val-dir", str(data), "--out", str(out), "--steps", "4", "--batch-size", "2",
            "--patch-size", "64", "--val-crop", "64", "--val-every", "2", "--warmup", "1", "--no-progress"]  # fmt: skip
    assert train.main(argv) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["state"]["step"] == 4
    assert state["machine"]["device"].startswith("cuda")
    assert "gpu" in state["machine"]


@pytest.mark.parametrize("arch", ["gabic", "zou2022"])
def test_encoder_search_on_gpu_decodes_exactly(arch):
    """``effort`` on the GPU: the search runs there (its random draws from a CUDA generator) and the
    container decodes to the encoder's own image."""
    from gabic.models import build_model

    torch.manual_seed(11)
    model = build_model(arch, TINY_CONFIG, quality=2).cuda().eval()
    model.update(force=True)
    x = image_to_tensor(random_image(64, 96, seed=7))
    data, _, from_encoder = codec.encode_and_reconstruct(model, x, effort=5)
    assert torch.equal(codec.decompress_tensor(data, model), from_encoder)
