"""Rate-distortion training of GABIC / Zou2022 (``python -m gabic train``).

Loss ``R + λ·255²·MSE`` (CompressAI's :class:`~compressai.losses.RateDistortionLoss`),
Adam for the network, a second Adam for the EntropyBottleneck quantiles
(auxiliary loss), gradient clipping, a linear warm-up then plateau decay on the
validation loss (as in the paper). Random crops with flips from an image folder
held in memory; validation on centre crops of a separate folder.

Runs on CUDA when present, else CPU; resumes exactly from ``OUT/last.pt``
(model, optimizers, scheduler, RNG, step); writes a checkpoint every few
minutes; logs every step to ``OUT/log.jsonl`` and every validation to
``OUT/val.jsonl``. Multi-process data parallel with ``torchrun`` (DDP, NCCL on
GPUs, gloo on CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from compressai.losses import RateDistortionLoss
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from ..codec.images import list_images, load_image
from ..models import PAPER_CONFIG, SMALL_CONFIG, ChannelwiseAttentionCodec, ModelConfig, build_model
from ..records import machine_description
from ..zoo import restore_constants

#: λ of the paper's four qualities.
QUALITY_LAMBDAS = {1: 0.0067, 2: 0.0130, 3: 0.025, 4: 0.0483}


def lambda_at(quality: float) -> float:
    """λ of a continuous quality in ``[1, 4]``: the paper's four λ, log-linear in between
    (the interpolation the gain units use for their vectors)."""
    if not 1.0 <= quality <= 4.0:
        raise ValueError(f"quality must be in 1..4, got {quality}")
    lower = min(int(math.floor(quality)), 3)
    weight = quality - lower
    low, high = math.log(QUALITY_LAMBDAS[lower]), math.log(QUALITY_LAMBDAS[lower + 1])
    return math.exp((1 - weight) * low + weight * high)


def draw_quality(generator: torch.Generator, levels: int) -> float:
    """A training quality: one of the ``levels`` trained points half of the time, else uniform
    in ``[1, levels]`` (so the interpolated gains are trained too)."""
    if bool(torch.rand(1, generator=generator) < 0.5):
        return float(int(torch.randint(1, levels + 1, (1,), generator=generator)))
    return 1.0 + float(torch.rand(1, generator=generator)) * (levels - 1)


def spread_gains(model: ChannelwiseAttentionCodec, reference_quality: int) -> None:
    """Start the gain units of a variable-rate model warm-started from a one-rate model trained
    at ``reference_quality``: gain 1 there, and ``sqrt(λ_q / λ_ref)`` at the other levels (the
    quantiser step that high-rate theory gives for λ), inverse gains the reciprocal."""
    reference = QUALITY_LAMBDAS[reference_quality]
    with torch.no_grad():
        for level in range(model.config.rate_levels):
            log_gain = 0.5 * math.log(QUALITY_LAMBDAS[level + 1] / reference)
            model.y_gain.log_gain[level].fill_(log_gain)
            model.y_gain.log_inverse_gain[level].fill_(-log_gain)


CONFIGS = {"small": SMALL_CONFIG, "paper": PAPER_CONFIG}


def load_folder_uint8(folder: str | os.PathLike, min_side: int = 0) -> list[Tensor]:
    """All images of ``folder`` as ``(3, H, W)`` uint8 tensors (kept in memory)."""
    images = []
    for path in list_images(folder):
        array = np.asarray(load_image(path), dtype=np.uint8)
        if min(array.shape[:2]) >= min_side:
            images.append(torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous())
    if not images:
        raise ValueError(f"{folder}: no usable images (need a side of at least {min_side} px)")
    return images


class RandomCrops:
    """Batches of random ``patch x patch`` crops with random horizontal flips."""

    def __init__(self, images: list[Tensor], patch: int, batch: int, seed: int) -> None:
        self.images = images
        self.patch = patch
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> Tensor:
        crops = []
        for _ in range(self.batch):
            image = self.images[int(torch.randint(len(self.images), (1,), generator=self.generator))]
            _, height, width = image.shape
            top = int(torch.randint(height - self.patch + 1, (1,), generator=self.generator))
            left = int(torch.randint(width - self.patch + 1, (1,), generator=self.generator))
            crop = image[:, top : top + self.patch, left : left + self.patch]
            if bool(torch.rand(1, generator=self.generator) < 0.5):
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.stack(crops).float().div_(255.0)


def centre_crops(images: list[Tensor], size: int) -> list[Tensor]:
    """Centre ``size x size`` crops (1, 3, s, s) in [0, 1] for validation."""
    crops = []
    for image in images:
        _, height, width = image.shape
        top, left = (height - size) // 2, (width - size) // 2
        crops.append(image[None, :, top : top + size, left : left + size].float() / 255.0)
    return crops


@torch.no_grad()
def validate(model: ChannelwiseAttentionCodec, crops: list[Tensor], lmbda: float,
             device: torch.device, quality: float | None = None) -> dict[str, float]:  # fmt: skip
    """Mean estimated bpp, MSE, PSNR and RD loss of ``model`` (eval mode) on ``crops``."""
    was_training = model.training
    model.eval()
    bpp_sum = mse_sum = psnr_sum = 0.0
    for crop in crops:
        x = crop.to(device)
        out = model(x, quality)
        pixels = x.shape[-1] * x.shape[-2]
        bits = sum(-torch.log2(v).sum().item() for v in out["likelihoods"].values())
        mse = torch.mean((out["x_hat"].clamp(0, 1) - x) ** 2).item()
        bpp_sum += bits / pixels
        mse_sum += mse
        psnr_sum += 10 * math.log10(1 / max(mse, 1e-12))
    model.train(was_training)
    n = len(crops)
    bpp, mse = bpp_sum / n, mse_sum / n
    return {"bpp": bpp, "mse": mse, "psnr": psnr_sum / n, "loss": bpp + lmbda * 255**2 * mse}


def validate_run(model: ChannelwiseAttentionCodec, crops: list[Tensor], lmbda: float | None,
                 device: torch.device) -> dict[str, Any]:  # fmt: skip
    """:func:`validate` at the run's λ; for a variable-rate model at each trained quality, with
    ``loss`` the geometric mean of their losses (one number that weighs every rate alike)."""
    if not model.config.variable_rate:
        return validate(model, crops, lmbda, device)
    per_quality = {
        q: validate(model, crops, lam, device, quality=float(q)) for q, lam in QUALITY_LAMBDAS.items()
    }
    loss = math.exp(sum(math.log(m["loss"]) for m in per_quality.values()) / len(per_quality))
    return {"loss": loss, "qualities": {str(q): m for q, m in per_quality.items()}}


def split_parameters(model: torch.nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """(network parameters, EntropyBottleneck quantiles) as CompressAI trains them."""
    net = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    return net, aux


@dataclass
class TrainState:
    step: int = 0
    best_val: float = math.inf
    elapsed: float = 0.0
    warmup_start: int = 0  # step where the current linear lr warm-up began
    warmup_lr: float = 0.0  # lr the warm-up ramps to (0: the --lr argument)
    final_decay_done: bool = False  # the --final-decay lr drop has been applied


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)


def _atomic_torch_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_weights_into(model: ChannelwiseAttentionCodec, path: str | os.PathLike) -> list[str]:
    """Load a safetensors or ``.pt``/``.pth.tar`` state dict into ``model`` (strict, except that
    the gain units of a variable-rate model may be missing: a one-rate parent). Returns the
    missing gain keys."""
    path = Path(path)
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    result = model.load_state_dict(restore_constants(model, state), strict=False)
    missing_gains = [k for k in result.missing_keys if k.startswith(("y_gain.", "z_gain."))]
    others = [k for k in result.missing_keys if k not in missing_gains]
    if others or result.unexpected_keys:
        raise ValueError(f"{path}: missing keys {others[:8]}, unexpected keys {result.unexpected_keys[:8]}")
    return missing_gains


def _card_quality(path: str | os.PathLike) -> int | None:
    card = Path(path).with_suffix(".json")
    if card.is_file():
        quality = json.loads(card.read_text()).get("quality")
        return int(quality) if quality in QUALITY_LAMBDAS else None
    return None


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic train", description=__doc__)
    parser.add_argument("--arch", choices=["gabic", "zou2022"], required=True)
    parser.add_argument("--config", default="small", help="'small', 'paper' or a JSON file")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--quality", type=int, choices=sorted(QUALITY_LAMBDAS))
    group.add_argument("--lmbda", type=float)
    group.add_argument(
        "--variable-rate",
        action="store_true",
        help="one model for the four λ: gain units, a quality (and its λ) drawn per batch",
    )
    parser.add_argument("--gain-lr", type=float, default=1e-3, help="lr of the gain vectors")
    parser.add_argument(
        "--gain-reference",
        type=int,
        default=None,
        choices=sorted(QUALITY_LAMBDAS),
        help="quality of the one-rate --init-from weights (default: from its model card)",
    )
    parser.add_argument("--train-dir", required=True)
    parser.add_argument("--val-dir", required=True)
    parser.add_argument("--out", required=True, help="run folder (checkpoints and logs)")
    parser.add_argument("--steps", type=int, required=True, help="total optimizer steps")
    parser.add_argument(
        "--steps-file",
        help="file holding an integer that, once it exists, replaces --steps "
        "(read before every step): one common step budget for runs started together",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="per process")
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--aux-lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=300, help="linear lr warm-up steps")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    parser.add_argument("--lr-factor", type=float, default=0.3)
    parser.add_argument("--lr-patience", type=int, default=4, help="validations without gain")
    parser.add_argument("--min-lr", type=float, default=1e-6)
    parser.add_argument(
        "--final-decay",
        type=float,
        default=0.0,
        help="multiply the lr by --final-decay-factor once, for the last FRACTION of the steps",
    )
    parser.add_argument("--final-decay-factor", type=float, default=0.1)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--val-images", type=int, default=24)
    parser.add_argument("--val-crop", type=int, default=256)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--init-from", help="weights to start from (fine-tuning), e.g. a higher-λ model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="train the transforms under bfloat16 autocast (entropy models, quantisation and "
        "validation stay float32); about 1.5x faster on CPUs with AVX512-BF16",
    )
    return parser


def _autocast_in_training(module: torch.nn.Module, dtype: torch.dtype) -> None:
    forward = module.forward

    def forward_autocast(*args, **kwargs):
        if not module.training:
            return forward(*args, **kwargs)
        device_type = next(module.parameters()).device.type
        with torch.autocast(device_type, dtype=dtype):
            out = forward(*args, **kwargs)
        return out.float()

    module.forward = forward_autocast


def autocast_transforms(model: ChannelwiseAttentionCodec, dtype: torch.dtype = torch.bfloat16) -> None:
    """Run the model's transforms under autocast to ``dtype`` while it is in training mode.

    Covers ``g_a``, ``g_s``, ``h_a``, both hyper-synthesis transforms and the slice
    transforms (mean, scale, LRP); their outputs are cast back to float32, so noise,
    rounding and the likelihoods of both entropy models are computed in float32. In
    eval mode (validation, codec) nothing changes. The state dict keeps its keys.
    """
    for module in (model.g_a, model.g_s, model.h_a, model.h_mean_s, model.h_scale_s,
                   *model.cc_mean_transforms, *model.cc_scale_transforms, *model.lrp_transforms):  # fmt: skip
        _autocast_in_training(module, dtype)


#: Copy, in a run folder, of the model card of the shipped file the run started from.
PARENT_CARD = "parent_card.json"


def keep_parent_card(init_from: str | None, out: Path) -> None:
    """When ``init_from`` is a shipped file (a model card beside it), keep a copy of that card in
    ``out``: shipping this run later replaces the file and its card, and the lineage must survive."""
    if not init_from or (out / PARENT_CARD).exists():
        return
    card = Path(init_from).with_suffix(".json")
    if card.is_file():
        (out / PARENT_CARD).write_text(card.read_text())


def resolve_config(name: str) -> ModelConfig:
    if name in CONFIGS:
        return CONFIGS[name]
    return ModelConfig.from_dict(json.loads(Path(name).read_text()))


def train(args: argparse.Namespace) -> TrainState:
    """Run (or resume) one training run described by ``args`` (see the CLI)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if args.device:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if distributed:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels
    config = resolve_config(args.config)
    if args.variable_rate:
        config = config.with_rate_levels(len(QUALITY_LAMBDAS))
        lmbda = None
    else:
        lmbda = args.lmbda if args.lmbda is not None else QUALITY_LAMBDAS[args.quality]
    out = Path(args.out)
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        keep_parent_card(args.init_from, out)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    model = build_model(args.arch, config).to(device)
    if args.bf16:
        autocast_transforms(model)
    net_params, aux_params = split_parameters(model)
    gain_params = [p for n, p in model.named_parameters() if n.startswith(("y_gain.", "z_gain."))]
    gain_ids = {id(p) for p in gain_params}
    groups = [{"params": [p for p in net_params if id(p) not in gain_ids], "lr_scale": 1.0}]
    if gain_params:
        groups.append({"params": gain_params, "lr_scale": args.gain_lr / args.lr})
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    for group in optimizer.param_groups:
        group["lr"] = args.lr * group["lr_scale"]
    aux_optimizer = torch.optim.Adam(aux_params, lr=args.aux_lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=args.lr_factor, patience=args.lr_patience, min_lr=args.min_lr
    )
    criterion = RateDistortionLoss(lmbda=lmbda or 0.0)
    quality_generator = torch.Generator().manual_seed(args.seed + rank + 1000)
    state = TrainState()
    crops = RandomCrops(load_folder_uint8(args.train_dir, args.patch_size), args.patch_size,
                        args.batch_size, args.seed + rank)  # fmt: skip
    val_crops = centre_crops(load_folder_uint8(args.val_dir, args.val_crop)[: args.val_images],
                             args.val_crop)  # fmt: skip

    last = out / "last.pt"
    # Linear lr warm-up over args.warmup steps from state.warmup_start: from step 0 for a new run, and
    # again after a resume from committed weights, whose Adam moments start from zero (its first
    # steps are sign-like and as large as the lr).
    if last.exists():
        checkpoint = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        aux_optimizer.load_state_dict(checkpoint["aux_optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state = TrainState(**checkpoint["state"])
        torch.set_rng_state(checkpoint["rng"]["torch"].cpu())
        crops.generator.set_state(checkpoint["rng"][f"crops{rank}"].cpu()
                                  if f"crops{rank}" in checkpoint["rng"]
                                  else checkpoint["rng"]["crops0"].cpu())  # fmt: skip
        if "quality" in checkpoint["rng"]:
            quality_generator.set_state(checkpoint["rng"]["quality"].cpu())
    elif (out / "weights.safetensors").exists():  # committed between sessions: weights + counters
        load_weights_into(model, out / "weights.safetensors")
        saved = json.loads((out / "state.json").read_text())
        state = TrainState(**saved["state"])
        for group in optimizer.param_groups:
            group["lr"] = saved.get("lr", args.lr) * group["lr_scale"]
        crops.generator.manual_seed(args.seed + rank + state.step)
        quality_generator.manual_seed(args.seed + rank + 1000 + state.step)
        torch.manual_seed(args.seed + state.step)
        state.warmup_start, state.warmup_lr = state.step, saved.get("lr", args.lr)
    elif args.init_from:
        missing = load_weights_into(model, args.init_from)
        if missing:  # a one-rate parent of a variable-rate run: start the gains from its λ
            reference = args.gain_reference or _card_quality(args.init_from)
            if reference is None:
                raise ValueError(f"{args.init_from}: pass --gain-reference (the quality it was trained at)")
            spread_gains(model, reference)

    train_model: torch.nn.Module = model
    if distributed:
        quantile_names = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, quantile_names
        )
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    model.train()

    log_file = open(out / "log.jsonl", "a", buffering=1) if is_main else None  # noqa: SIM115  (line-buffered: supervisors count steps)
    last_save = time.time()
    started = time.time() - state.elapsed
    label = "variable rate" if lmbda is None else f"λ={lmbda}"
    progress = tqdm(total=args.steps, initial=state.step, disable=args.no_progress or not is_main,
                    desc=f"{args.arch} {label}")  # fmt: skip

    def save() -> None:
        state.elapsed = time.time() - started
        rng = {"torch": torch.get_rng_state(), "quality": quality_generator.get_state()}
        gathered = [crops.generator.get_state()]
        if distributed:
            gathered = [torch.empty_like(gathered[0]) for _ in range(world)]
            dist.all_gather(gathered, crops.generator.get_state())
        for r, s in enumerate(gathered):
            rng[f"crops{r}"] = s
        if not is_main:
            return
        _atomic_torch_save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "aux_optimizer": aux_optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "state": vars(state), "rng": rng, "arch": args.arch, "config": config.to_dict(),
             "lmbda": lmbda},
            last,
        )  # fmt: skip
        _save_weights(model, out / "weights.safetensors")
        (out / "state.json").write_text(json.dumps({
            "state": vars(state), "lr": optimizer.param_groups[0]["lr"], "arch": args.arch,
            "config": config.to_dict(), "lmbda": lmbda, "batch_size": args.batch_size * world,
            "patch_size": args.patch_size, "seed": args.seed,
            "args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))},
            "machine": machine_description(device)}, indent=1))  # fmt: skip

    def read_steps_file() -> None:
        if not args.steps_file:
            return
        budget = args.steps
        if is_main and Path(args.steps_file).is_file():
            text = Path(args.steps_file).read_text().strip()
            budget = int(text) if text.isdigit() else budget
        if distributed:  # every replica must stop at the same step, so rank 0's reading decides
            shared = torch.tensor([budget], dtype=torch.int64, device=device)
            dist.broadcast(shared, src=0)
            budget = int(shared.item())
        if budget != args.steps:
            args.steps = budget
            progress.total = args.steps
            if is_main:
                tqdm.write(f"{args.arch} {label}: step budget {args.steps} (from {args.steps_file})")

    while state.step < args.steps:
        read_steps_file()
        if state.step >= args.steps:
            break
        if (
            args.final_decay > 0
            and not state.final_decay_done
            and state.step >= (1 - args.final_decay) * args.steps
        ):
            for group in optimizer.param_groups:
                group["lr"] *= args.final_decay_factor
            state.final_decay_done = True
        if state.step < state.warmup_start + args.warmup:
            target_lr = state.warmup_lr or args.lr
            for group in optimizer.param_groups:
                group["lr"] = (
                    target_lr * group["lr_scale"] * (state.step - state.warmup_start + 1) / args.warmup
                )
        t0 = time.time()
        x = crops.next_batch().to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        aux_optimizer.zero_grad(set_to_none=True)
        if args.variable_rate:
            quality = draw_quality(quality_generator, config.rate_levels)
            criterion.lmbda = lambda_at(quality)
            out_dict = train_model(x, quality)
        else:
            quality = None
            out_dict = train_model(x)
        losses = criterion(out_dict, x)
        losses["loss"].backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(net_params, args.clip)
        optimizer.step()
        aux_loss = model.aux_loss()
        aux_loss.backward()
        if distributed:
            for p in aux_params:
                dist.all_reduce(p.grad)
                p.grad /= world
        aux_optimizer.step()
        state.step += 1
        progress.update(1)
        if log_file is not None:
            mse = losses["mse_loss"].item()
            record = {"step": state.step, "loss": losses["loss"].item(), "bpp": losses["bpp_loss"].item(),
                      "mse": mse, "psnr": 10 * math.log10(1 / max(mse, 1e-12)),
                      "aux": aux_loss.item(), "lr": optimizer.param_groups[0]["lr"],
                      "seconds": round(time.time() - t0, 4)}  # fmt: skip
            if quality is not None:
                record["quality"] = round(quality, 4)
            log_file.write(json.dumps(record) + "\n")
            if state.step % 20 == 0:
                log_file.flush()
                progress.set_postfix(bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}")
        if state.step % args.val_every == 0 or state.step == args.steps:
            metrics = validate_run(model, val_crops, lmbda, device)
            if state.step >= state.warmup_start + args.warmup:
                scheduler.step(metrics["loss"])
            if is_main:
                metrics.update(step=state.step, lr=optimizer.param_groups[0]["lr"])
                with open(out / "val.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                if metrics["loss"] < state.best_val:
                    state.best_val = metrics["loss"]
                    _save_weights(model, out / "best.safetensors")
            save()
            last_save = time.time()
        elif time.time() - last_save > args.checkpoint_minutes * 60:
            save()
            last_save = time.time()
    save()
    progress.close()
    if log_file is not None:
        log_file.close()
    if distributed:
        # every replica reports a checksum of its weights; they must all be equal
        checksums: list[str | None] = [None] * world
        dist.all_gather_object(checksums, weights_checksum(model))
        if is_main:
            saved = json.loads((out / "state.json").read_text())
            saved["replica_checksums"] = checksums
            (out / "state.json").write_text(json.dumps(saved, indent=1))
        dist.barrier()
        dist.destroy_process_group()
    return state


def weights_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over all parameters and buffers (to compare replicas)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    train(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_argument_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
