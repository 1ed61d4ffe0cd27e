"""Subcommands of ``python -m core``; each module exposes ``register(subparsers)``."""

# Module names under core.commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("inspect", "train", "evaluate", "predict", "video", "bundle", "pack", "export")
