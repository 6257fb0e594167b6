"""The ``brainrep`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def _simulate(args: argparse.Namespace) -> int:
    from brainrep.simulate import DemoSpec, simulate_dataset

    truth = simulate_dataset(args.root, DemoSpec(n_subjects=args.n_subjects,
                                                 effect_size=args.effect_size, seed=args.seed))
    counts = truth.groupby(["group", "subtype"]).size().to_dict()
    print(f"wrote {len(truth)} participants to {args.root} (group, subtype): {counts}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from snakemake.utils import update_config

    from brainrep.config import ConfigError, validate_config

    config: dict = {}
    for path in args.configfiles:  # merged as snakemake merges --configfile files
        with open(path) as handle:
            update_config(config, yaml.safe_load(handle) or {})
    try:
        validate_config(config, args.schema)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(yaml.safe_dump(config, sort_keys=False), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="brainrep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="write the demo BIDS dataset")
    simulate.add_argument("root", type=Path, help="output folder (the BIDS root)")
    simulate.add_argument("--n-subjects", type=int, default=40)
    simulate.add_argument("--effect-size", type=float, default=1.0,
                          help="0 writes the null dataset")
    simulate.add_argument("--seed", type=int, default=42)
    simulate.set_defaults(func=_simulate)
    validate = commands.add_parser("validate-config",
                                   help="merge config files, validate, print with defaults")
    validate.add_argument("configfiles", nargs="+", type=Path)
    validate.add_argument("--schema", type=Path,
                          default=Path("workflow/schemas/config.schema.yaml"))
    validate.set_defaults(func=_validate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
