"""One timed round of training of the shipped models on one GPU, with one common step budget.

The shipped models are small, so one GPU runs all of them at once: GABIC and Zou2022 at q1..q4, each
started from its architecture's q4 parent (q4 goes on training at its own λ, q1..q3 are fine-tuned to
theirs), with the same arguments and seed. A GPU round has a fixed wall-clock budget, and the two
architectures may run at different speeds, so the step budget is measured, not guessed: after a
calibration window the supervisor predicts how many steps the slowest run reaches by the deadline and
writes that number to a file that every run reads (``python -m gabic train --steps-file``). Every run
then stops at exactly that step, and the --final-decay lr drop lands at the same step for all.

    python training/gpu_round.py train --root DIR --seconds 450 [-- extra train arguments]
    python training/gpu_round.py train --variable-rate --root DIR --seconds 450 --parent W [-- ...]
    python training/gpu_round.py pack --root DIR --arch gabic --to OUTDIR [--logs]
    python training/gpu_round.py unpack FILES_AT --suffix gpuN    # back on this machine

``pack`` writes each run's validation-selected weights as fp16 safetensors (the device's file-return
limits) and, with --logs, one tar.gz of every run's log.jsonl, val.jsonl, state.json, parent card, file list and stdout.

With ``--variable-rate`` a round has two runs, ``gabic-small-vr`` and ``zou2022-small-vr``, each from
``--parent`` (``{arch}`` filled in). ``unpack`` turns the files a device call brought back into local
run folders ``runs/<arch>-small-vr-<suffix>/`` for ``gabic ship``.

Getting there: the lent machine gets a copy of the working tree (at most 64 MiB) and has no network.
``training/gpu_prepare.sh`` gathers BSDS500 train, the first 24 val photos and the CompressAI and
pytorch-msssim wheels in the ignored ``.gpu/`` and takes the one-rate weight files out of the index
for the call (``restore`` puts them back); ``training/gpu_session.sh`` is the one prepared command run
there (benchmark, variable-rate round, ``pack``). Rounds 1 and 2 (eight one-rate runs) went the same
way by hand, with fp16 parents beside their run folders; eight fp16 models are ~82 MB, so they came
back in two calls (GABIC, then Zou2022).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ARCHS = ("gabic", "zou2022")
QUALITIES = (1, 2, 3, 4)


def run_name(arch: str, quality: int | None) -> str:
    """``gabic-small-q3`` for a one-rate run, ``gabic-small-vr`` for a variable-rate one (quality None)."""
    return f"{arch}-small-vr" if quality is None else f"{arch}-small-q{quality}"


def steps_done(run: Path) -> int:
    """Optimizer steps logged so far by a run (one line of log.jsonl per step)."""
    log = run / "log.jsonl"
    if not log.is_file():
        return 0
    with open(log, "rb") as f:
        return sum(1 for _ in f)


def train_round(args: argparse.Namespace, extra: list[str]) -> int:
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    steps_file = root / "steps"
    steps_file.unlink(missing_ok=True)
    processes: dict[str, subprocess.Popen] = {}
    started = time.time()
    deadline = started + args.seconds
    # one variable-rate run per architecture, or one run per architecture and quality
    qualities = [None] if args.variable_rate else args.qualities
    for arch in ARCHS:
        for quality in qualities:
            parent = args.parent.format(arch=arch, quality=quality)
            name = run_name(arch, quality)
            rate = ["--variable-rate"] if quality is None else ["--quality", str(quality)]
            command = [sys.executable, "-W", "ignore", "-m", "gabic", "train", "--arch", arch, *rate,
                       "--init-from", parent, "--out", str(root / name),
                       "--steps", "1000000", "--steps-file", str(steps_file), "--no-progress", *extra]  # fmt: skip
            stdout = open(root / f"{name}.stdout", "w")  # noqa: SIM115
            processes[name] = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT)
    print(f"started {len(processes)} runs: {' '.join(processes)}", flush=True)

    def check_alive() -> bool:
        for name, process in processes.items():
            code = process.poll()
            if code not in (None, 0):
                print(
                    f"{name} exited with {code}:\n" + (root / f"{name}.stdout").read_text()[-3000:],
                    flush=True,
                )
                return False
        return True

    def stop_all() -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait()

    # Calibration: rates over a window after start-up (data loading, cuDNN autotuning, first val).
    time.sleep(args.calibrate_after)
    first = {name: steps_done(root / name) for name in processes}
    first_time = time.time()
    while time.time() - first_time < args.calibrate_window:
        time.sleep(5)
        if not check_alive():
            stop_all()
            return 1
    now = time.time()
    second = {name: steps_done(root / name) for name in processes}
    rates = {name: (second[name] - first[name]) / (now - first_time) for name in processes}
    predicted = {name: second[name] + rates[name] * (deadline - now) for name in processes}
    # never below where a run already is (every run must be able to stop exactly at the budget)
    budget = max(int(min(predicted.values())), max(second.values()) + 10)
    steps_file.write_text(f"{budget}\n")
    print(
        json.dumps(
            {
                "calibration_s": round(now - started),
                "steps_now": second,
                "steps_per_s": {k: round(v, 2) for k, v in rates.items()},
                "budget": budget,
            }
        ),
        flush=True,
    )

    hard_deadline = deadline + args.grace
    while any(p.poll() is None for p in processes.values()):
        time.sleep(10)
        if not check_alive():
            stop_all()
            return 1
        if time.time() > hard_deadline:
            print("hard deadline: stopping the runs that have not reached the budget", flush=True)
            stop_all()
            break
        print(
            f"t={time.time() - started:.0f}s " + " ".join(f"{n}={steps_done(root / n)}" for n in processes),
            flush=True,
        )
    final = {name: steps_done(root / name) for name in processes}
    print(json.dumps({"wall_s": round(time.time() - started), "budget": budget, "steps": final}), flush=True)
    for name in processes:
        val = root / name / "val.jsonl"
        if val.is_file():
            lines = val.read_text().splitlines()
            print(name, "last val:", lines[-1] if lines else "-", flush=True)
    return 0 if all(steps == budget for steps in final.values()) else 2


def pack(args: argparse.Namespace) -> int:
    from safetensors.torch import load_file, save_file

    from gabic.zoo import half_storage

    root, target = Path(args.root), Path(args.to)
    target.mkdir(parents=True, exist_ok=True)
    for quality in (*QUALITIES, None):
        run = root / run_name(args.arch, quality)
        if not run.is_dir():
            continue
        source = run / "best.safetensors"
        if not source.is_file():
            source = run / "weights.safetensors"
        state = load_file(str(source))
        half = half_storage(state)
        # the entropy bottleneck's own parameters stay fp32 (a few thousand numbers): `gabic ship`
        # builds the coder's tables from them, which then equal those of shipping the run folder itself
        half.update({k: v for k, v in state.items() if k.startswith("entropy_bottleneck.")})
        save_file(half, str(target / f"{run.name}.safetensors"), metadata={"source": source.name})
    if args.logs:
        with tarfile.open(target / "logs.tar.gz", "w:gz") as tar:
            for run in sorted(p for p in root.iterdir() if p.is_dir()):
                for name in ("log.jsonl", "val.jsonl", "state.json", "parent_card.json", "train_files.json"):
                    if (run / name).is_file():
                        tar.add(run / name, arcname=f"{run.name}/{name}")
            for stdout in sorted(root.glob("*.stdout")):
                tar.add(stdout, arcname=stdout.name)
    return 0


def unpack(args: argparse.Namespace) -> int:
    """Turn what a device call brought back (``pack``'s files) into local run folders
    ``runs/<arch>-small-<rate>-<suffix>/``: the weights under the name ``pack`` read them from
    (``best.safetensors``, or ``weights.safetensors`` for a run that never validated) beside its logs,
    ready for ``python -m gabic ship`` and ``training/record_run.py``."""
    from safetensors import safe_open

    source, runs = Path(args.source), Path(args.runs)
    logged: dict[str, bytes] = {}  # "gabic-small-vr/val.jsonl" -> contents
    if (source / "logs.tar.gz").is_file():
        with tarfile.open(source / "logs.tar.gz") as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    logged[member.name] = extracted.read()
    packed = {
        path.name.removesuffix(".safetensors"): path for path in sorted(source.glob("*-small-*.safetensors"))
    }
    targets = {run: runs / f"{run}-{args.suffix}" for run in packed}
    existing = [str(target) for target in targets.values() if target.exists()]
    if existing:  # checked before anything is written: a refused unpack leaves no half-made folders
        print(f"{', '.join(existing)} exist(s): nothing unpacked", file=sys.stderr)
        return 1
    made = []
    for run, weights in packed.items():
        target = targets[run]
        target.mkdir(parents=True)
        # pack recorded which file it halved: the validation-selected one, or the last weights
        with safe_open(str(weights), framework="pt") as opened:
            packed_from = (opened.metadata() or {}).get("source", "best.safetensors")
        (target / packed_from).write_bytes(weights.read_bytes())
        for member, contents in logged.items():
            folder, _, name = member.partition("/")
            if folder == run and name and "/" not in name:
                (target / name).write_bytes(contents)
        if f"{run}.stdout" in logged:
            (target / "stdout.txt").write_bytes(logged[f"{run}.stdout"])
        made.append(str(target))
    print("\n".join(made) if made else f"{source}: no *-small-*.safetensors")
    return 0 if made else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train")
    train_parser.add_argument("--root", required=True)
    train_parser.add_argument("--seconds", type=float, required=True, help="wall-clock budget of the round")
    train_parser.add_argument(
        "--parent",
        default="runs/{arch}-small-q4/parent-fp16.safetensors",
        help="weights each run starts from; {arch} and {quality} are filled in",
    )
    train_parser.add_argument("--qualities", type=int, nargs="+", default=list(QUALITIES))
    train_parser.add_argument(
        "--variable-rate",
        action="store_true",
        help="one variable-rate run per architecture (<arch>-small-vr) instead of one per quality",
    )
    train_parser.add_argument("--calibrate-after", type=float, default=60.0)
    train_parser.add_argument("--calibrate-window", type=float, default=40.0)
    train_parser.add_argument(
        "--grace", type=float, default=45.0, help="seconds past the deadline before stopping"
    )
    pack_parser = sub.add_parser("pack")
    pack_parser.add_argument("--root", required=True)
    pack_parser.add_argument("--arch", choices=ARCHS, required=True)
    pack_parser.add_argument("--to", required=True)
    pack_parser.add_argument("--logs", action="store_true")
    unpack_parser = sub.add_parser("unpack")
    unpack_parser.add_argument("source", help="the folder the device tool's files came back to")
    unpack_parser.add_argument("--suffix", required=True, help="the round's name, e.g. gpu1")
    unpack_parser.add_argument("--runs", default="runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.command == "train":
        return train_round(args, extra)
    return pack(args) if args.command == "pack" else unpack(args)


if __name__ == "__main__":
    raise SystemExit(main())
