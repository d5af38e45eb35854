"""``tam models``: the supported model families and the media each one takes; with ``--plan
MODEL``, the memory a model needs, what this machine has, and the placement that fits."""

from __future__ import annotations

import argparse

from tam_engine.cli.exitcodes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the supported model families and the media each one takes",
        description="List the model families tam explains (chosen from a model's config "
        "model_type), with example checkpoints and the media each takes: one image, several "
        "images in one prompt, a video, and whether large images are tiled. Other "
        "image-text-to-text models are explained only where their vision tokens can be "
        "checked; otherwise they are refused with a message. With --plan MODEL: estimate the "
        "memory MODEL needs from its config alone (no weights are read), show it beside this "
        "machine's GPUs, CPU memory and free disk, and propose the placement that fits.")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as Markdown (README's model table)")
    p.add_argument("--plan", metavar="ID_OR_PATH", default=None,
                   help="plan the memory of this model (Hub id or local folder)")
    p.add_argument("--dtype", default="auto",
                   help="for --plan: auto (bfloat16 with a GPU, float32 without), float32, "
                   "bfloat16, float16")
    p.add_argument("--offload-folder", metavar="DIR", default=None,
                   help="for --plan: where disk offload would go (its free space counts)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="for --plan: allow the model repository's own config code")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.plan:
        print(plan_text(args.plan, args.dtype, args.offload_folder, args.trust_remote_code),
              end="")
        return ExitCode.OK
    from tam_engine.inference.catalog import markdown_table, text_table

    print(markdown_table() if args.markdown else text_table(), end="")
    return ExitCode.OK


def plan_text(model: str, dtype: str = "auto", offload_folder: str | None = None,
              trust_remote_code: bool = False) -> str:
    """The plan of ``model`` on this machine, as ``tam models --plan`` prints it."""
    from tam_engine.inference.model_placement import QUANT_HINT, bitsandbytes_available
    from tam_engine.inference.plan import model_size, plan_config, propose, this_machine

    machine = this_machine(offload_folder)
    dtype = _plan_dtype(dtype, bool(machine.gpus))
    size = model_size(plan_config(model, trust_remote_code), model)
    proposal = propose(size, machine, dtype, offload_folder=offload_folder)
    lines = [f"Model: {model}", f"Needs: {size.need(dtype).describe()}"]
    if machine.gpus:
        lines += [f"       {size.need(dtype, q).describe()}" for q in ("8bit", "4bit")]
    lines += ["This machine:"] + [f"  {line}" for line in machine.describe()]
    lines.append(f"Proposed: {proposal.kind}" + (
        f"  (tam explain ... {proposal.cli_flags()})" if proposal.fits else ""))
    lines.append(f"Trade-off: {proposal.trade_off}")
    if proposal.placement.quantization and not bitsandbytes_available():
        lines.append(f"Note: bitsandbytes is not installed. {QUANT_HINT}")
    return "\n".join(lines) + "\n"


def _plan_dtype(dtype: str, has_gpu: bool) -> str:
    from tam_engine.cli.exitcodes import UsageError

    names = {"auto": "bfloat16" if has_gpu else "float32", "float32": "float32",
             "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
             "float16": "float16", "fp16": "float16"}
    key = dtype.strip().lower()
    if key not in names:
        raise UsageError(f"Unknown dtype {dtype!r}.", "Use auto, float32, bfloat16 or float16.")
    return names[key]
