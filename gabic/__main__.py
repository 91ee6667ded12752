"""Command line: ``python -m gabic {compress,decompress,train,eval,combine,bdrate,equal-rate,bench,ship} ...``.

Errors are printed as one line (``error: ...``) with exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path

#: Subcommands implemented in their own modules: name -> (module, help).
#: Each module provides ``build_argument_parser(parser)`` and ``run(args) -> int``.
COMMAND_MODULES = {
    "train": ("gabic.train.cli", "train a model (rate-distortion loss)"),
    "eval": ("gabic.eval.rd", "evaluate models or classic codecs on an image folder"),
    "combine": ("gabic.eval.combine", "join evaluations of the same codec on disjoint parts of a folder"),
    "bdrate": ("gabic.eval.bd", "BD-rate / BD-PSNR between result files and an RD plot"),
    "equal-rate": (
        "gabic.eval.equal_rate_set",
        "GABIC against Zou2022 at the same real rate on an image folder",
    ),
    "bench": ("gabic.bench.cli", "timings, FLOPs and memory of both models (paper Table 1)"),
    "ship": ("gabic.train.ship", "export a training run as shipped weights with a model card"),
}


def quality_argument(text: str) -> float:
    """A quality from the command line: 1..4, continuous for variable-rate models (e.g. 2.5)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a number in 1..4, got {text!r}") from None
    if not 1 <= value <= 4:
        raise argparse.ArgumentTypeError(f"quality must be in 1..4, got {text}")
    return value


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="shipped model: gabic-small-vr, zou2022-small-vr (variable rate, any quality "
                             "in 1..4), gabic-small, zou2022-small (one file per quality 1, 2, 3, 4); "
                             "or a weights file")  # fmt: skip
    parser.add_argument("--quality", type=quality_argument,
                        help="1..4 (the paper's four λ); any value in between for a variable-rate model")  # fmt: skip
    parser.add_argument("--arch", choices=["gabic", "zou2022"], help="for a checkpoint path")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")


def cmd_compress(args: argparse.Namespace) -> int:
    from . import codec, zoo
    from .codec.images import image_to_tensor, load_image

    model = zoo.load_model(args.model, args.quality, args.arch, args.device)
    if args.k is not None:
        model = codec.with_k(model, args.k)
    image = load_image(args.input)
    start = time.perf_counter()
    data = codec.compress_tensor(model, image_to_tensor(image), pad=args.pad, layout=args.layout,
                                 effort=args.effort)  # fmt: skip
    elapsed = time.perf_counter() - start
    Path(args.output).write_bytes(data)
    bpp = len(data) * 8 / (image.width * image.height)
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp, {image.width}×{image.height}, "
          f"encoded in {elapsed * 1000:.0f} ms")  # fmt: skip
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from . import codec, zoo

    data = Path(args.input).read_bytes()
    header = codec.read_header(data)
    model = zoo.load_model(args.model, args.quality, args.arch, args.device) if args.model else None
    start = time.perf_counter()
    image = codec.decompress(data, model)
    elapsed = time.perf_counter() - start
    image.save(args.output)
    bpp = len(data) * 8 / (header.width * header.height)
    print(f"{args.output}: {header.width}×{header.height} from {len(data)} bytes ({bpp:.4f} bpp, "
          f"{header.model_id} {codec.format_quality(header.quality)}, k={header.k}), decoded in {elapsed * 1000:.0f} ms")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .codec import search

    parser = argparse.ArgumentParser(prog="python -m gabic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compress", help="image -> .gabic bitstream")
    p.add_argument("input")
    p.add_argument("output")
    _add_model_arguments(p)
    p.add_argument("--k", type=int, help="neighbours per node for GABIC (default: trained k)")
    p.add_argument("--pad", choices=["edge", "zero"], default="edge",
                   help="padding to a multiple of 64: repeat the edge pixels (default) or zeros (the "
                   "reference codecs' rule, for paper-conformant numbers)")  # fmt: skip
    p.add_argument("--layout", choices=["compact", "reference"], default="compact",
                   help="compact (default): the image in the top-left corner of the padded canvas, latent "
                   "cells more than one cell beyond it not coded; reference: the padding split evenly, "
                   "every cell coded (container versions 1/2)")  # fmt: skip
    p.add_argument("--effort", type=search.effort_argument, default=0,
                   help="steps of encoder search: the same decoder, fewer bits (30: 12-13 %% on BSDS500 val) for "
                   "about 0.5 s a step (481×321, 2-core CPU; default 0: none)")  # fmt: skip
    p.set_defaults(func=cmd_compress)
    p = sub.add_parser("decompress", help=".gabic bitstream -> PNG")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--model", help="needed only for weights that are not shipped")
    p.add_argument("--quality", type=quality_argument)
    p.add_argument("--arch", choices=["gabic", "zou2022"])
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_decompress)
    for name, (module_name, help_text) in COMMAND_MODULES.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    # torch_geometric/compressai import with a torch.jit deprecation warning: noise for CLI users.
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] in COMMAND_MODULES:
        module = importlib.import_module(COMMAND_MODULES[argv[0]][0])
        sub_parser = module.build_argument_parser(
            argparse.ArgumentParser(prog=f"python -m gabic {argv[0]}", description=module.__doc__)
        )
        args = sub_parser.parse_args(argv[1:])
        runner = module.run
    else:
        args = parser.parse_args(argv)
        runner = args.func
    try:
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, KeyError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
