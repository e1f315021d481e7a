"""`lcm-hf demo`: the demo's subcommand, plugged into the `lcm-hf` console app through the
``lcm_hf.commands`` entry-point group (pyproject.toml), so the library never imports the demo."""

from __future__ import annotations

import os


def add_demo_command(commands) -> None:
    """Add ``demo`` to the `lcm-hf` subcommands (an ``argparse`` subparsers object)."""
    from ..console import add_threads_argument

    demo = commands.add_parser("demo", help="pretrain -> finetune -> report on the simulated demo cohort")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="a smoke-size run (seconds), for tests")
    add_threads_argument(demo)
    demo.add_argument("--pretrain-epochs", type=int, default=None)
    demo.add_argument("--finetune-epochs", type=int, default=None)
    demo.add_argument("--momentum-epochs", type=int, default=None)
    demo.set_defaults(handler=run_demo_command)


def run_demo_command(args) -> int:
    """Run the demo with the parsed `lcm-hf demo` options."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo simulates its data: nothing to download
    from .run import DemoSettings, run_demo

    settings = DemoSettings(output_dir=args.output_dir, seed=args.seed, num_threads=args.num_threads)
    if args.quick:  # a smoke-size run (tests, CI): few subjects and epochs
        settings.demo_subjects, settings.pretrain_epochs, settings.finetune_epochs = 40, 3, 3
        settings.momentum_epochs, settings.hidden_size, settings.num_hidden_layers = 1, 32, 2
    for name in ("pretrain_epochs", "finetune_epochs", "momentum_epochs"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    run_demo(settings)
    return 0
