"""Turn a training run into shipped weights (``python -m gabic ship``).

Writes ``assets/weights/{name}-q{quality}.safetensors`` (fp16 storage, entropy
coder tables included) and its model card ``.json``: configuration, λ, trained
k, training recipe, steps, wall time, machine, data, the validation numbers of
the selected checkpoint, and — when a results file is given — Kodak numbers.
A variable-rate run (``train --variable-rate``) ships as one file ``{name}.safetensors``
covering qualities 1..4; its card lists the four λ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import zoo
from ..models import ModelConfig, build_model
from .rates import QUALITY_LAMBDAS
from .runfolder import PARENT_CARD, load_weights_into


def _best_validation(run: Path) -> dict[str, Any] | None:
    path = run / "val.jsonl"
    if not path.is_file():
        return None
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return min(entries, key=lambda e: e["loss"]) if entries else None


#: Numbers of an evaluation point quoted in a model card.
QUOTED = ("bpp", "bpp_estimated", "psnr", "ms_ssim", "encode_ms", "decode_ms", "decode_matches_forward")


def _evaluation_numbers(results: Path, name: str, quality: float) -> dict[str, Any] | None:
    """Mean numbers of ``name`` q``quality`` in a ``python -m gabic eval`` results file, or ``None``."""
    data = json.loads(results.read_text())
    details = data.get("details", {})
    for point in details.get("points", []):
        if point.get("model_id") == name and point.get("quality") == quality:
            numbers = {key: point[key] for key in QUOTED if key in point}
            return {**numbers, "images": details.get("images"), "dataset": details.get("dataset"),
                    "device": details.get("device"), "threads": details.get("threads"),
                    "pad": point.get("pad", "zero")}  # fmt: skip
    return None


def _lineage(recipe: dict[str, Any], run: Path) -> list[dict[str, Any]]:
    """The runs this one was started from (``--init-from``), nearest first, as far as their
    folders (``state.json`` beside the weights file) or, for a shipped file, the copy of its
    card kept in the run folder (:data:`gabic.train.runfolder.PARENT_CARD`) tell."""
    chain: list[dict[str, Any]] = []
    init_from, folder = recipe.get("init_from"), run
    while init_from and len(chain) < 8:
        parent_card = folder / PARENT_CARD
        if parent_card.is_file():
            card = json.loads(parent_card.read_text())
            training = card.get("training") or {}
            chain.append({"weights": init_from, "lambda": card.get("lambda"), "steps": training.get("steps"),
                          "wall_time_hours": training.get("wall_time_hours"),
                          "batch_size": training.get("batch_size"), "patch_size": training.get("patch_size"),
                          "machine": training.get("machine"),
                          "run": (training.get("recipe") or {}).get("out")})  # fmt: skip
            chain.extend(training.get("started_from") or [])
            break
        state_file = Path(init_from).parent / "state.json"
        if not state_file.is_file():
            chain.append({"weights": init_from, "note": "run folder not present"})
            break
        state = json.loads(state_file.read_text())
        chain.append({"weights": init_from, "lambda": state.get("lmbda"), "steps": state["state"]["step"],
                      "wall_time_hours": round(state["state"]["elapsed"] / 3600, 2),
                      "batch_size": state.get("batch_size"), "patch_size": state.get("patch_size"),
                      "machine": state.get("machine")})  # fmt: skip
        folder = Path(init_from).parent
        init_from = (state.get("args") or {}).get("init_from")
    return chain


def _default_recipe(state: dict[str, Any]) -> dict[str, Any]:
    """Runs started before arguments were recorded used the trainer's defaults."""
    from .cli import RECIPES
    from .cli import build_argument_parser as train_parser

    defaults = {
        action.dest: action.default
        for action in train_parser()._actions
        if action.default is not None and action.dest != "help"
    }
    return {**defaults, **RECIPES["default"], "lmbda": state["lmbda"], "arch": state["arch"],
            "seed": state.get("seed")}  # fmt: skip


def ship(run: Path, name: str, quality: int | None, weights: str = "best",
         results: Path | None = None, out_dir: Path | None = None) -> Path:  # fmt: skip
    """Export ``run`` (a ``python -m gabic train`` folder) as shipped model ``name`` q``quality``
    (``quality`` ``None`` for a variable-rate run, which ships all qualities in one file)."""
    state = json.loads((run / "state.json").read_text())
    config = ModelConfig.from_dict(state["config"])
    if config.variable_rate != (quality is None):
        raise ValueError(
            f"{run} is a {'variable-rate' if config.variable_rate else 'one-rate'} run: "
            + ("ship it without --quality" if config.variable_rate else "pass --quality")
        )
    model = build_model(state["arch"], config)
    source = run / f"{weights}.safetensors" if weights in ("best", "weights") else Path(weights)
    if not source.is_file():
        source = run / "weights.safetensors"
    load_weights_into(model, source)
    model.update(force=True)
    args = state.get("args") or _default_recipe(state)
    best = _best_validation(run)
    lineage = _lineage(args, run)
    card: dict[str, Any] = {
        "model_id": name,
        "quality": quality,
        "lambda": state["lmbda"],
        **({"lambdas": dict(QUALITY_LAMBDAS), "qualities": "continuous, 1..4 (the paper's λ at 1, 2, 3, 4)"}
           if config.variable_rate else {}),
        "trained_k": config.k if state["arch"] == "gabic" else None,
        "trained": True,
        "training": {
            "steps": state["state"]["step"],
            "selected_step": best["step"] if best and source.name == "best.safetensors" else state["state"]["step"],
            "wall_time_hours": round(state["state"]["elapsed"] / 3600, 2),
            "batch_size": state.get("batch_size"),
            "patch_size": state.get("patch_size"),
            "seed": state.get("seed"),
            "recipe": args,
            "machine": state.get("machine", "2-core CPU build machine (description not recorded)"),
            "data": "BSDS500 train (200 photos), random crops + horizontal flips",
            "selection": ("lowest geometric mean of the RD losses at qualities 1..4 on 24 centre crops "
                          "(256²) of BSDS500 val" if config.variable_rate
                          else "lowest RD loss on 24 centre crops (256²) of BSDS500 val")
            if source.name == "best.safetensors" else f"weights file {source.name}",
            "weights_file": source.name,
            "started_from": lineage,
            "total_steps": state["state"]["step"] + sum(parent.get("steps") or 0 for parent in lineage),
        },
        "validation": best,
    }  # fmt: skip
    if results is not None:
        qualities = list(QUALITY_LAMBDAS) if quality is None else [quality]
        numbers = {q: _evaluation_numbers(results, name, q) for q in qualities}
        missing = [q for q, found in numbers.items() if found is None]
        if missing:
            raise ValueError(f"{results} has no evaluation of {name} at qualities {missing}")
        card["kodak"] = numbers[quality] if quality is not None else {f"q{q}": n for q, n in numbers.items()}
        card["kodak_results_file"] = results.as_posix()
    file_name = f"{name}.safetensors" if quality is None else f"{name}-q{quality}.safetensors"
    target = (out_dir or zoo.SHIPPED_WEIGHTS_DIR) / file_name
    zoo.save_weights(model, target, card)
    return target


def build_argument_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m gabic ship", description=__doc__)
    parser.add_argument("run", type=Path, help="training run folder")
    parser.add_argument("--name", required=True, choices=sorted(zoo.SHIPPED))
    parser.add_argument("--quality", type=int, choices=list(zoo.QUALITIES),
                        help="the run's quality (one-rate runs); leave out for a variable-rate run")  # fmt: skip
    parser.add_argument("--weights", default="best", help="'best' (validation), 'weights' (last) or a file")
    parser.add_argument("--results", type=Path, help="Kodak results JSON (python -m gabic eval) to quote")
    parser.add_argument("--out-dir", type=Path, help="default: assets/weights")
    return parser


def run(args: argparse.Namespace) -> int:
    path = ship(args.run, args.name, args.quality, args.weights, args.results, args.out_dir)
    print(f"wrote {path} and {path.with_suffix('.json').name}")
    return 0
