"""Rate-distortion training of GABIC / Zou2022 (``python -m gabic train``).

Loss ``R + λ·255²·MSE`` (CompressAI's RateDistortionLoss), Adam for the network, a second Adam
for the EntropyBottleneck quantiles, gradient clipping, a linear warm-up and an optional final
decay, and the paper's plateau decay on the validation loss. Random crops with flips streamed
from a folder tree; validation on centre crops of a separate folder.

``--recipe paper`` is the paper's training (paper configuration, batch 16 of 256² crops, Adam
1e-4, ×0.3 after 10 epochs without gain on the validation loss, 200 epochs, bfloat16 autocast
on GPUs that support it); every flag given explicitly overrides its part of the recipe.

Runs on CUDA when present, else CPU; resumes exactly from ``OUT/last.pt``, also in the middle
of an epoch. Several processes with ``torchrun`` (DDP: NCCL on GPUs, gloo on CPU), each on its
own shard of every epoch.
"""

from __future__ import annotations

import argparse
from typing import Any

from .rates import QUALITY_LAMBDAS

#: Values of the flags a recipe sets; a flag given on the command line wins over its recipe.
#: ``epochs=None``: the run length comes from ``--steps``. ``val_every=0``: once per epoch.
#: ``bf16=None``: bfloat16 autocast when the device is a GPU that supports it.
RECIPES: dict[str, dict[str, Any]] = {
    "default": {"config": "small", "batch_size": 8, "patch_size": 128, "lr": 2e-4, "warmup": 300,
                "lr_factor": 0.3, "lr_patience": 4, "val_every": 500, "epochs": None, "bf16": False},
    "paper": {"config": "paper", "batch_size": 16, "patch_size": 256, "lr": 1e-4, "warmup": 0,
              "lr_factor": 0.3, "lr_patience": 10, "val_every": 0, "epochs": 200, "bf16": None},
}  # fmt: skip


def apply_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every recipe flag left unset (``None``) taken from ``args.recipe``."""
    recipe = RECIPES[args.recipe]
    explicit = {key: value for key, value in vars(args).items() if value is not None}
    return argparse.Namespace(**{**vars(args), **{k: v for k, v in recipe.items() if k not in explicit}})


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic train", description=__doc__)
    default, paper = RECIPES["default"], RECIPES["paper"]
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="default",
                        help="values for the flags marked [default ..., paper ...] that are not given")  # fmt: skip
    parser.add_argument("--arch", choices=["gabic", "zou2022"], required=True)
    parser.add_argument("--config", help="'small', 'paper' or a JSON file [default small, paper paper]")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--quality", type=int, choices=sorted(QUALITY_LAMBDAS))
    group.add_argument("--lmbda", type=float)
    group.add_argument("--variable-rate", action="store_true",
                       help="one model for the four λ: gain units, a quality (and its λ) drawn per batch")  # fmt: skip
    parser.add_argument("--gain-lr", type=float, default=1e-3, help="lr of the gain vectors")
    parser.add_argument("--gain-reference", type=int, default=None, choices=sorted(QUALITY_LAMBDAS),
                        help="quality of the one-rate --init-from weights (default: from its model card)")  # fmt: skip
    parser.add_argument("--train-dir", required=True, help="folder tree of training images (recursive)")
    parser.add_argument("--val-dir", required=True)
    parser.add_argument("--out", required=True, help="run folder (checkpoints and logs)")
    parser.add_argument("--steps", type=int, help="total optimizer steps (default: --epochs of the data)")
    parser.add_argument("--epochs", type=int, help=f"passes over the training data when --steps is not given "
                        f"[default none, paper {paper['epochs']}]")  # fmt: skip
    parser.add_argument("--steps-file", help="file holding an integer that, once it exists, replaces --steps "
                        "(read before every step): one common step budget for runs started together")  # fmt: skip
    parser.add_argument("--batch-size", type=int,
                        help=f"per process [default {default['batch_size']}, paper {paper['batch_size']}]")  # fmt: skip
    parser.add_argument("--patch-size", type=int,
                        help=f"crop side [default {default['patch_size']}, paper {paper['patch_size']}]; "
                        "images with a shorter side are enlarged to it (bicubic)")  # fmt: skip
    parser.add_argument("--workers", type=int,
                        help="DataLoader processes decoding images (default: 0 on CPU, up to 8 per GPU)")  # fmt: skip
    parser.add_argument("--lr", type=float, help=f"[default {default['lr']}, paper {paper['lr']}]")
    parser.add_argument("--aux-lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int,
                        help=f"linear lr warm-up steps [default {default['warmup']}, paper {paper['warmup']}]")  # fmt: skip
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    parser.add_argument("--lr-factor", type=float,
                        help=f"plateau decay factor [default {default['lr_factor']}, paper {paper['lr_factor']}]")  # fmt: skip
    parser.add_argument("--lr-patience", type=int, help="validations without gain before a decay "
                        f"[default {default['lr_patience']}, paper {paper['lr_patience']}]")  # fmt: skip
    parser.add_argument("--min-lr", type=float, default=1e-6)
    parser.add_argument("--final-decay", type=float, default=0.0,
                        help="multiply the lr by --final-decay-factor once, for the last FRACTION of the steps")  # fmt: skip
    parser.add_argument("--final-decay-factor", type=float, default=0.1)
    parser.add_argument("--val-every", type=int, help="steps between validations, 0: every epoch "
                        f"[default {default['val_every']}, paper {paper['val_every']}]")  # fmt: skip
    parser.add_argument("--val-images", type=int, default=24)
    parser.add_argument("--val-crop", type=int, default=256)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--init-from", help="weights to start from (fine-tuning), e.g. a higher-λ model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction,
                        help="run the transforms under bfloat16 autocast (entropy models, quantisation and "
                        "validation stay float32) [default off, paper on GPUs that support it]")  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> int:
    from .loop import train

    train(apply_recipe(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_argument_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
