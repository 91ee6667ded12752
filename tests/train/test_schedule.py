"""The learning-rate schedule as pure functions, and the recipes of the command line."""

from __future__ import annotations

import math
import random

import pytest
import torch

from gabic.train import cli
from gabic.train.schedule import Plateau, lr_at, plateau_lrs, plateau_step


def test_lr_at_warms_up_linearly_then_holds():
    rates = [lr_at(step, lr=1e-3, warmup=4, total_steps=100) for step in range(6)]
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert lr_at(0, lr=1e-3, warmup=0, total_steps=100) == 1e-3


def test_lr_at_warms_up_again_from_a_later_start():
    assert lr_at(9, lr=1e-3, warmup=2, total_steps=100, warmup_start=10) == 0.0
    assert lr_at(10, lr=1e-3, warmup=2, total_steps=100, warmup_start=10) == pytest.approx(5e-4)
    assert lr_at(11, lr=1e-3, warmup=2, total_steps=100, warmup_start=10) == pytest.approx(1e-3)


def test_lr_at_final_decay_covers_the_last_fraction_and_stays_once_applied():
    def rate(step, total, done=False):
        return lr_at(step, lr=1.0, warmup=0, total_steps=total, final_decay=0.25, final_decay_factor=0.1,
                     final_decay_done=done)  # fmt: skip

    assert [rate(s, 8) for s in range(8)] == pytest.approx([1.0] * 6 + [0.1] * 2)
    # a larger step budget arriving later does not undo a decay that was applied
    assert rate(6, 100) == 1.0 and rate(6, 100, done=True) == pytest.approx(0.1)


@pytest.mark.parametrize("factor,patience,min_lr", [(0.3, 10, 1e-6), (0.5, 0, 1e-7), (0.3, 2, 2e-5)])
def test_plateau_step_follows_torch_reduce_lr_on_plateau(factor, patience, min_lr):
    """The same decisions as torch's ReduceLROnPlateau (mode min, relative threshold 1e-4) on a
    noisy loss curve that improves, stalls and improves again."""
    lr = 1e-4
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=factor, patience=patience,
                                                           min_lr=min_lr)  # fmt: skip
    rng = random.Random(0)
    losses = [2.0 - 0.01 * i + rng.uniform(-0.02, 0.02) for i in range(40)] + [1.7] * 30
    losses += [1.7 * (1 - 1e-5)] * 5 + [1.5 + rng.uniform(0, 0.3) for _ in range(60)]
    plateau, ours, theirs = Plateau(), [], []
    for loss in losses:
        plateau = plateau_step(plateau, loss, factor=factor, patience=patience, min_scale=min_lr / lr)
        scheduler.step(loss)
        ours.append(lr * plateau.scale)
        theirs.append(optimizer.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs, rel=1e-9)
    assert len(set(theirs)) > 2  # the curve does make it decay more than once
    assert plateau_lrs(losses, lr=lr, factor=factor, patience=patience, min_lr=min_lr) == pytest.approx(ours)


def test_the_paper_recipe_decays_by_0_3_after_ten_epochs_without_gain():
    paper = cli.RECIPES["paper"]
    assert (paper["lr"], paper["lr_factor"], paper["lr_patience"], paper["epochs"]) == (1e-4, 0.3, 10, 200)
    # 20 epochs of gains, then a flat loss: epochs 21..30 are the patience, epoch 31 decays
    losses = [1.0 - 0.01 * epoch for epoch in range(20)] + [0.81] * 30
    rates = plateau_lrs(losses, lr=paper["lr"], factor=paper["lr_factor"], patience=paper["lr_patience"])
    assert rates[:30] == [1e-4] * 30
    assert rates[30:41] == pytest.approx([3e-5] * 11) and rates[41] == pytest.approx(9e-6)
    # any gain resets the count
    rates = plateau_lrs(losses[:25] + [0.5] + [0.5] * 10, lr=1e-4, factor=0.3, patience=10)
    assert rates == [1e-4] * 36


def test_plateau_reads_its_own_dict_and_an_old_reduce_lr_on_plateau_state():
    plateau = Plateau(best=1.5, bad_validations=3, scale=0.09)
    assert Plateau.from_dict(plateau.to_dict()) == plateau
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=4)
    for loss in (3.0, 2.0, 2.5):
        scheduler.step(loss)
    old = Plateau.from_dict(scheduler.state_dict(), scale_if_missing=0.3)
    assert old == Plateau(best=2.0, bad_validations=1, scale=0.3)
    assert not math.isfinite(Plateau().best)


def _parse(*argv: str):
    base = ["--arch", "gabic", "--quality", "2", "--train-dir", "t", "--val-dir", "v", "--out", "o"]
    return cli.apply_recipe(cli.build_argument_parser().parse_args([*base, *argv]))


def test_recipe_paper_sets_every_part_and_explicit_flags_override_it():
    args = _parse("--recipe", "paper")
    assert (args.config, args.batch_size, args.patch_size, args.lr, args.epochs, args.steps) == (
        "paper", 16, 256, 1e-4, 200, None)  # fmt: skip
    assert (args.lr_factor, args.lr_patience, args.val_every, args.warmup, args.bf16) == (0.3, 10, 0, 0, None)
    args = _parse("--recipe", "paper", "--batch-size", "8", "--lr", "5e-5", "--no-bf16", "--val-every", "100")
    assert (args.batch_size, args.lr, args.bf16, args.val_every, args.patch_size) == (
        8,
        5e-5,
        False,
        100,
        256,
    )


def test_default_recipe_keeps_the_flags_the_trainer_always_had():
    args = _parse("--steps", "10")
    assert (args.config, args.batch_size, args.patch_size, args.lr, args.warmup) == (
        "small",
        8,
        128,
        2e-4,
        300,
    )
    assert (args.lr_factor, args.lr_patience, args.val_every, args.bf16, args.epochs) == (
        0.3,
        4,
        500,
        False,
        None,
    )
    assert _parse("--steps", "10", "--bf16").bf16 is True
