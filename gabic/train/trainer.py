"""What one training process holds: its counters, model, optimizers and data (:func:`setup`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ..models import ChannelwiseAttentionCodec, ModelConfig, build_model, resolve_config
from .data import FILE_LIST, RandomCropDataset, cached_file_list, steps_per_epoch, validation_crops
from .rates import QUALITY_LAMBDAS
from .runfolder import keep_parent_card
from .schedule import Plateau


@dataclass
class TrainState:
    """Counters of a run, saved in ``last.pt`` and ``state.json``."""

    step: int = 0
    best_val: float = math.inf
    elapsed: float = 0.0
    warmup_start: int = 0  # step where the current linear lr warm-up began
    warmup_lr: float = 0.0  # lr the warm-up ramps to (0: the --lr argument)
    final_decay_done: bool = False  # the --final-decay lr drop has been applied
    epoch: int = -1  # epoch of the next batch (-1: a run folder from before epochs were saved)
    batch: int = 0  # index of the next batch within that epoch
    skipped_images: int = 0  # training items whose file could not be read (all processes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Trainer:
    """What one process trains with (built by :func:`setup`, brought to the saved point by
    :func:`resume`)."""

    args: argparse.Namespace
    device: torch.device
    rank: int
    world: int
    config: ModelConfig
    lmbda: float | None  # None: variable rate
    bf16: bool
    model: ChannelwiseAttentionCodec
    train_model: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    aux_optimizer: torch.optim.Optimizer
    net_params: list[Tensor]
    aux_params: list[Tensor]
    dataset: RandomCropDataset
    val_crops: list[Tensor]
    steps_per_epoch: int
    workers: int
    plateau: Plateau = field(default_factory=Plateau)
    state: TrainState = field(default_factory=TrainState)
    skipped_since_save: int = 0

    @property
    def out(self) -> Path:
        return Path(self.args.out)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def total_steps(self) -> int:
        if self.args.steps is not None:
            return self.args.steps
        return self.args.epochs * self.steps_per_epoch


def split_parameters(model: torch.nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """(network parameters, EntropyBottleneck quantiles) as CompressAI trains them."""
    net = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    return net, aux


def _process_group(args: argparse.Namespace) -> tuple[torch.device, int, int]:
    """Device, rank and world size; joins the torchrun process group when there is one."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, rank, world


def _training_files(args: argparse.Namespace, rank: int, world: int) -> list[str]:
    """The run's training files: listed (or read from the run folder) by rank 0, sent to all."""
    files: list[Any] = [None]
    if rank == 0:
        keep = (Path(args.out) / "last.pt").exists() or (Path(args.out) / "state.json").exists()
        files[0] = cached_file_list(args.train_dir, Path(args.out) / FILE_LIST, keep_existing=keep)
    if world > 1:
        dist.broadcast_object_list(files, src=0)
    return files[0]


def default_workers(device: torch.device) -> int:
    """DataLoader workers when ``--workers`` is not given: none on the CPU (decoding would take
    cores from the step), else the CPU cores per process on this machine, at most 8."""
    if device.type == "cpu":
        return 0
    return max(1, min(8, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of
    ``/proc/cpuinfo``, or of ``cpuinfo`` when given); ``None`` where that file cannot be read.

    Without it, bfloat16 autocast on the CPU is emulated and far slower than float32 (a training
    step of the shipped configuration: 113 s against 6.0 s on an AVX2-only AMD EPYC)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = {word for line in cpuinfo.splitlines() if line.startswith("flags") for word in line.split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def setup(args: argparse.Namespace) -> Trainer:
    """Process group, model, optimizers and data of a run whose flags are resolved (see
    :func:`gabic.train.cli.apply_recipe`)."""
    if args.steps is None and args.epochs is None:
        raise ValueError("give --steps or --epochs (or --recipe paper)")
    device, rank, world = _process_group(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels
    bf16 = args.bf16 if args.bf16 is not None else device.type == "cuda" and torch.cuda.is_bf16_supported()
    args = argparse.Namespace(**{**vars(args), "bf16": bf16})
    if bf16 and device.type == "cpu" and cpu_has_native_bf16() is False and rank == 0:
        print("warning: --bf16 on a CPU without AVX512-BF16 or AMX: bfloat16 is emulated there and a "
              "step is many times slower than in float32 (--no-bf16)", file=sys.stderr)  # fmt: skip
    config = resolve_config(args.config)
    if args.variable_rate:
        config, lmbda = config.with_rate_levels(len(QUALITY_LAMBDAS)), None
    else:
        lmbda = args.lmbda if args.lmbda is not None else QUALITY_LAMBDAS[args.quality]
    if rank == 0:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        keep_parent_card(args.init_from, Path(args.out))

    torch.manual_seed(args.seed)
    model = build_model(args.arch, config).to(device)
    net_params, aux_params = split_parameters(model)
    gain_params = [p for n, p in model.named_parameters() if n.startswith(("y_gain.", "z_gain."))]
    gain_ids = {id(p) for p in gain_params}
    groups = [{"params": [p for p in net_params if id(p) not in gain_ids], "lr_scale": 1.0}]
    if gain_params:
        groups.append({"params": gain_params, "lr_scale": args.gain_lr / args.lr})
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=args.aux_lr)

    dataset = RandomCropDataset(
        args.train_dir, _training_files(args, rank, world), args.patch_size, args.seed
    )
    workers = args.workers if args.workers is not None else default_workers(device)
    return Trainer(
        args=args, device=device, rank=rank, world=world, config=config, lmbda=lmbda, bf16=bf16,
        model=model, train_model=model, optimizer=optimizer, aux_optimizer=aux_optimizer,
        net_params=net_params, aux_params=aux_params, dataset=dataset,
        val_crops=validation_crops(args.val_dir, args.val_crop, args.val_images),
        steps_per_epoch=steps_per_epoch(dataset, args.batch_size, world), workers=workers,
    )  # fmt: skip
