"""The training loop: resume, one optimizer step, validation, saving (flags: :mod:`.cli`)."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from compressai.losses import RateDistortionLoss
from torch import Tensor
from tqdm import tqdm

from ..records import machine_description
from .data import epoch_loader
from .rates import card_quality, lambda_at, quality_at_step, spread_gains
from .runfolder import load_weights_into, save_checkpoint, save_weights, weights_checksum, write_json
from .schedule import Plateau, in_final_decay, lr_at, plateau_step
from .trainer import Trainer, TrainState, setup
from .validation import validate_run

__all__ = ["TrainState", "Trainer", "load_weights_into", "resume", "save", "setup", "train", "train_step"]


def lr_of_step(t: Trainer, step: int) -> float:
    """Learning rate of 0-based ``step`` before the plateau decay (see :func:`lr_at`)."""
    s, a = t.state, t.args
    return lr_at(step, lr=s.warmup_lr or a.lr, warmup=a.warmup, total_steps=t.total_steps,
                 warmup_start=s.warmup_start, final_decay=a.final_decay,
                 final_decay_factor=a.final_decay_factor, final_decay_done=s.final_decay_done)  # fmt: skip


def _plateau_from_saved(t: Trainer, saved: dict[str, Any] | None, lr_in_force: float) -> Plateau:
    """The plateau state saved by this module, or one rebuilt from an older run folder (a
    ``ReduceLROnPlateau`` state or none): its scale is the lr in force over what the schedule
    gives for the last step."""
    scheduled = lr_of_step(t, max(t.state.step - 1, 0))
    scale = lr_in_force / scheduled if scheduled > 0 else 1.0
    return Plateau.from_dict(saved, scale_if_missing=scale) if saved else Plateau(scale=scale)


def resume(t: Trainer) -> None:
    """Bring ``t`` to where its run folder left off: ``last.pt`` (exact), else the committed
    ``weights.safetensors`` + ``state.json`` (fresh Adam moments, so the lr warms up again),
    else ``--init-from`` weights; then wrap the model for DDP."""
    last, args = t.out / "last.pt", t.args
    if last.exists():
        checkpoint = torch.load(last, map_location=t.device, weights_only=True)
        t.model.load_state_dict(checkpoint["model"])
        t.optimizer.load_state_dict(checkpoint["optimizer"])
        t.aux_optimizer.load_state_dict(checkpoint["aux_optimizer"])
        t.state = TrainState.from_dict(checkpoint["state"])
        lr_in_force = checkpoint["optimizer"]["param_groups"][0]["lr"]
        t.plateau = _plateau_from_saved(t, checkpoint["scheduler"], lr_in_force)
        torch.set_rng_state(checkpoint["rng"]["torch"].cpu())
    elif (t.out / "weights.safetensors").exists():
        load_weights_into(t.model, t.out / "weights.safetensors")
        saved = json.loads((t.out / "state.json").read_text())
        t.state = TrainState.from_dict(saved["state"])
        t.plateau = _plateau_from_saved(t, saved.get("scheduler"), saved.get("lr", args.lr))
        torch.manual_seed(args.seed + t.state.step)
        t.state.warmup_start = t.state.step
    elif args.init_from:
        missing = load_weights_into(t.model, args.init_from)
        if missing:  # a one-rate parent of a variable-rate run: start the gains from its λ
            reference = args.gain_reference or card_quality(args.init_from)
            if reference is None:
                raise ValueError(f"{args.init_from}: pass --gain-reference (the quality it was trained at)")
            spread_gains(t.model, reference)
    if t.state.epoch < 0:  # older run folder: place the step in the epochs of today's data
        t.state.epoch, t.state.batch = divmod(t.state.step, t.steps_per_epoch)
    if t.state.batch >= t.steps_per_epoch:  # fewer batches per epoch than when it was saved
        t.state.epoch, t.state.batch = t.state.epoch + 1, 0
    if t.world > 1:
        quantiles = [n for n, _ in t.model.named_parameters() if n.endswith(".quantiles")]
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            t.model, quantiles
        )
        t.train_model = torch.nn.parallel.DistributedDataParallel(
            t.model, device_ids=[t.device.index] if t.device.type == "cuda" else None
        )
    t.model.train()


def train_step(t: Trainer, images: Tensor) -> dict[str, Any]:
    """One optimizer step on ``images`` (``(B, 3, p, p)`` uint8): forward under bfloat16
    autocast when ``t.bf16``, RD loss, clipped Adam step, aux step. Returns the step's numbers."""
    step = t.state.step
    if in_final_decay(step, t.total_steps, t.args.final_decay):
        t.state.final_decay_done = True
    lr = lr_of_step(t, step) * t.plateau.scale
    for group in t.optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]
    quality = None
    if t.lmbda is None:
        quality = quality_at_step(t.args.seed, t.rank, step, t.config.rate_levels)
    lmbda = t.lmbda if quality is None else lambda_at(quality)
    x = images.to(t.device, non_blocking=True).float().div_(255.0)
    t.optimizer.zero_grad(set_to_none=True)
    t.aux_optimizer.zero_grad(set_to_none=True)
    with torch.autocast(t.device.type, dtype=torch.bfloat16, enabled=t.bf16):
        out = t.train_model(x, quality)
    losses = RateDistortionLoss(lmbda=lmbda)(out, x)
    losses["loss"].backward()
    if t.args.clip > 0:
        torch.nn.utils.clip_grad_norm_(t.net_params, t.args.clip)
    t.optimizer.step()
    aux_loss = t.model.aux_loss()
    aux_loss.backward()
    if t.world > 1:
        for p in t.aux_params:
            dist.all_reduce(p.grad)
            p.grad /= t.world
    t.aux_optimizer.step()
    t.state.step += 1
    mse = losses["mse_loss"].item()
    record = {"step": t.state.step, "loss": losses["loss"].item(), "bpp": losses["bpp_loss"].item(),
              "mse": mse, "psnr": 10 * math.log10(1 / max(mse, 1e-12)), "aux": aux_loss.item(), "lr": lr}  # fmt: skip
    if quality is not None:
        record["quality"] = round(quality, 4)
    return record


def validate_and_decay(t: Trainer) -> dict[str, Any]:
    """Validate (every process, so the plateau decisions agree), step the plateau decay after the
    warm-up, keep the best weights, append to ``val.jsonl``."""
    metrics = validate_run(t.model, t.val_crops, t.lmbda, t.device)
    if t.state.step >= t.state.warmup_start + t.args.warmup:
        t.plateau = plateau_step(t.plateau, metrics["loss"], factor=t.args.lr_factor, patience=t.args.lr_patience,
                                 min_scale=t.args.min_lr / t.args.lr)  # fmt: skip
    if t.is_main:
        metrics.update(
            step=t.state.step, epoch=t.state.epoch, lr=lr_of_step(t, t.state.step) * t.plateau.scale
        )
        with open(t.out / "val.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if metrics["loss"] < t.state.best_val:
            t.state.best_val = metrics["loss"]
            save_weights(t.model, t.out / "best.safetensors")
    return metrics


def save(t: Trainer, started: float) -> None:
    """Write ``last.pt``, ``weights.safetensors`` and ``state.json`` (rank 0)."""
    skipped = torch.tensor([t.skipped_since_save], dtype=torch.int64, device=t.device)
    if t.world > 1:
        dist.all_reduce(skipped)
    t.state.skipped_images += int(skipped.item())
    t.skipped_since_save = 0
    t.state.elapsed = time.time() - started
    if not t.is_main:
        return
    a = t.args
    save_checkpoint(
        {"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
         "aux_optimizer": t.aux_optimizer.state_dict(), "scheduler": t.plateau.to_dict(),
         "state": asdict(t.state), "rng": {"torch": torch.get_rng_state()}, "arch": a.arch,
         "config": t.config.to_dict(), "lmbda": t.lmbda},
        t.out / "last.pt",
    )  # fmt: skip
    save_weights(t.model, t.out / "weights.safetensors")
    write_json({"state": asdict(t.state), "lr": lr_of_step(t, t.state.step) * t.plateau.scale,
                "scheduler": t.plateau.to_dict(), "arch": a.arch, "config": t.config.to_dict(),
                "lmbda": t.lmbda, "batch_size": a.batch_size * t.world, "patch_size": a.patch_size,
                "seed": a.seed, "processes": t.world, "workers": t.workers, "bf16": t.bf16,
                "train_files": len(t.dataset), "steps_per_epoch": t.steps_per_epoch,
                "args": {k: v for k, v in vars(a).items() if isinstance(v, (str, int, float, bool, type(None)))},
                "machine": machine_description(t.device)}, t.out / "state.json")  # fmt: skip


def read_steps_file(t: Trainer) -> None:
    """Replace ``--steps`` with the number in ``--steps-file`` once it exists (rank 0 reads, all
    processes follow, so every replica stops at the same step)."""
    if not t.args.steps_file:
        return
    budget = t.args.steps if t.args.steps is not None else -1
    if t.is_main and Path(t.args.steps_file).is_file():
        text = Path(t.args.steps_file).read_text().strip()
        budget = int(text) if text.isdigit() else budget
    if t.world > 1:
        shared = torch.tensor([budget], dtype=torch.int64, device=t.device)
        dist.broadcast(shared, src=0)
        budget = int(shared.item())
    if budget >= 0 and budget != t.args.steps:
        t.args.steps = budget
        if t.is_main:
            tqdm.write(f"{t.args.arch}: step budget {budget} (from {t.args.steps_file})")


def checkpoint_due(t: Trainer, since_save: float) -> bool:
    """Whether ``--checkpoint-minutes`` have passed since the last save, by rank 0's clock (saving
    is collective: every process must decide alike)."""
    due = torch.tensor([since_save > t.args.checkpoint_minutes * 60], device=t.device)
    if t.world > 1:
        dist.broadcast(due, src=0)
    return bool(due.item())


def _finish(t: Trainer) -> None:
    """DDP: record every replica's weight checksum (they must agree) and leave the group."""
    checksums: list[str | None] = [None] * t.world
    dist.all_gather_object(checksums, weights_checksum(t.model))
    if t.is_main:
        saved = json.loads((t.out / "state.json").read_text())
        write_json({**saved, "replica_checksums": checksums}, t.out / "state.json")
    dist.barrier()
    dist.destroy_process_group()


def train(args: argparse.Namespace) -> TrainState:
    """Run (or resume) one training run described by ``args`` (resolved flags, see :mod:`.cli`)."""
    t = setup(args)
    resume(t)
    read_steps_file(t)
    log_file = open(t.out / "log.jsonl", "a", buffering=1) if t.is_main else None  # noqa: SIM115  (line-buffered: supervisors count steps)
    started, last_save = time.time() - t.state.elapsed, time.time()
    label = "variable rate" if t.lmbda is None else f"λ={t.lmbda}"
    progress = tqdm(total=t.total_steps, initial=t.state.step, disable=t.args.no_progress or not t.is_main,
                    desc=f"{t.args.arch} {label}")  # fmt: skip
    images_per_step = t.args.batch_size * t.world
    while t.state.step < t.total_steps:
        batches = iter(epoch_loader(t.dataset, t.state.epoch, batch=t.args.batch_size, world=t.world, rank=t.rank,
                                    start_batch=t.state.batch, workers=t.workers,
                                    pin_memory=t.device.type == "cuda"))  # fmt: skip
        epoch_done = False
        while not epoch_done:
            read_steps_file(t)
            progress.total = t.total_steps
            if t.state.step >= t.total_steps:
                break
            waiting = time.perf_counter()
            images, skipped = next(batches)
            data_seconds = time.perf_counter() - waiting
            record = train_step(t, images)
            t.state.batch += 1
            if t.state.batch == t.steps_per_epoch:
                t.state.epoch, t.state.batch, epoch_done = t.state.epoch + 1, 0, True
            t.skipped_since_save += len(skipped)
            seconds = time.perf_counter() - waiting
            progress.update(1)
            if log_file is not None:
                record.update(seconds=round(seconds, 4), data_seconds=round(data_seconds, 4),
                              data_share=round(data_seconds / seconds, 4),
                              images_per_s=round(images_per_step / seconds, 2))  # fmt: skip
                if skipped:
                    record["skipped"] = skipped
                    tqdm.write(f"skipped unreadable training images: {', '.join(skipped)}")
                log_file.write(json.dumps(record) + "\n")
                if t.state.step % 20 == 0:
                    progress.set_postfix(bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}",
                                         img_s=f"{record['images_per_s']:.1f}")  # fmt: skip
            val_every = t.args.val_every
            if (
                (val_every > 0 and t.state.step % val_every == 0)
                or (val_every == 0 and epoch_done)
                or (t.state.step == t.total_steps)
            ):
                validate_and_decay(t)
                save(t, started)
                last_save = time.time()
            elif checkpoint_due(t, time.time() - last_save):
                save(t, started)
                last_save = time.time()
        del batches  # ends this epoch's worker processes
    save(t, started)
    progress.close()
    if log_file is not None:
        log_file.close()
    if t.world > 1:
        _finish(t)
    return t.state
