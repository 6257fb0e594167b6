"""Configuration: JSON-Schema validation with defaults and errors that name the key and the fix."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml
from jsonschema import Draft202012Validator, validators


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and how to fix it."""


def _with_defaults(validator_class: type) -> type:
    """Extend a validator so that ``default`` values are written into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator:
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = _copy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def write_config(config: dict, path: str | Path) -> None:
    """Write the validated configuration, every default filled in, as YAML: what the run
    actually used."""
    with open(path, "w") as handle:
        handle.write("# The resolved configuration of this run: the user's keys and every schema "
                     "default.\n")
        yaml.safe_dump(config, handle, sort_keys=False)


def load_schema(path: str | Path) -> dict:
    """Read a YAML JSON-Schema file (safe load)."""
    with open(path) as handle:
        return yaml.safe_load(handle)


def _properties(schema: dict, validator: Draft202012Validator) -> dict:
    if "$ref" in schema:  # the schema's own definitions: "#/$defs/<name>"
        target = validator.schema
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema.get("properties", {})


def _suggestion(key: str, schema: dict, validator: Draft202012Validator) -> str:
    """Closest allowed key, also one level down ('bids_root' -> 'bids.root')."""
    candidates = {}
    for name, sub in _properties(schema, validator).items():
        candidates[name] = name
        for child in _properties(sub, validator):
            candidates[f"{name}_{child}"] = f"{name}.{child}"
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean '{candidates[close[0]]}'?" if close else ""


def _describe(error, validator) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "top level"
    if error.validator == "additionalProperties":
        allowed = sorted(_properties(error.schema, validator))
        return "\n".join(
            f"unknown config key '{key}' at {where}.{_suggestion(key, error.schema, validator)} "
            f"Allowed keys here: {', '.join(allowed)}."
            for key in sorted(set(error.instance) - set(allowed)))
    return f"config key '{where}': {error.message}. Fix this value in your config file."


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` in place against the schema, inject defaults and check cross-keys.

    Raises :class:`ConfigError` listing every problem, each naming its key.
    """
    schema = load_schema(schema_path)
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    problems = [_describe(error, validator) for error in errors]
    if not problems:
        if config["demo"]["enabled"] is None:  # the demo when no dataset is named
            config["demo"]["enabled"] = config["bids"]["root"] is None
        problems = _cross_checks(config)
    if problems:
        raise ConfigError("Invalid brainrep configuration:\n  " + "\n  ".join(problems))
    return _in_schema_order(config, schema, validator)


def _in_schema_order(instance: Any, schema: dict, validator: Draft202012Validator) -> Any:
    """Reorder ``instance``'s keys, in place and at every level, as the schema lists them.

    Two configurations that differ only in key order then give every rule the same params,
    so Snakemake reruns nothing. Free-form mappings (e.g. ``eeg.bands``, whose order is that
    of the output columns) keep the user's order.
    """
    properties = _properties(schema, validator)
    if not isinstance(instance, dict) or not properties:
        return instance
    items = ([(k, instance[k]) for k in properties if k in instance]
             + [(k, v) for k, v in instance.items() if k not in properties])
    instance.clear()
    for key, value in items:
        instance[key] = _in_schema_order(value, properties.get(key, {}), validator)
    return instance


def _cross_checks(config: dict) -> list[str]:
    problems = []
    root = config["bids"]["root"]
    if not config["demo"]["enabled"]:
        if root is None:
            problems.append("config key 'bids.root' is missing: set it to your raw BIDS dataset "
                            "(or set demo.enabled: true to run the built-in demo).")
        elif not Path(root, "dataset_description.json").is_file():
            problems.append(f"config key 'bids.root': {root!r} is not a BIDS dataset "
                            "(no dataset_description.json there). Fix the path.")
    elif root is not None:
        problems.append("config keys 'demo.enabled' and 'bids.root' are both set: the demo "
                        "writes its own dataset. Set demo.enabled: false to use bids.root.")
    eeg = config["eeg"]
    if eeg["l_freq"] >= eeg["h_freq"]:
        problems.append("config keys 'eeg.l_freq'/'eeg.h_freq': the high-pass must be below "
                        "the low-pass.")
    if eeg["h_freq"] >= eeg["sfreq"] / 2:
        problems.append("config key 'eeg.sfreq': must exceed twice eeg.h_freq (Nyquist).")
    if eeg["overlap_s"] >= eeg["window_s"]:
        problems.append("config key 'eeg.overlap_s': must be shorter than eeg.window_s.")
    events = eeg["events"]
    if events and events["tasks"] and set(eeg["tasks"]) - set(events["tasks"]) and abs(
            eeg["window_s"] - (events["tmax"] - events["tmin"])) > 1e-9:
        windowed = sorted(set(eeg["tasks"]) - set(events["tasks"]))
        problems.append(f"config key 'eeg.window_s': tasks {windowed} get fixed windows and "
                        f"{events['tasks']} event-locked epochs, which "
                        "share one window store: set eeg.window_s to eeg.events.tmax - "
                        f"eeg.events.tmin = {events['tmax'] - events['tmin']:g}.")
    fmriprep = config["fmri"]["fmriprep"]
    if fmriprep["image"] is None:
        fmriprep["image"] = f"docker://nipreps/fmriprep:{fmriprep['version']}"
    if fmriprep["run"]:
        if config["demo"]["enabled"]:
            problems.append("config key 'fmri.fmriprep.run': the demo ships preprocessed BOLD; "
                            "run fMRIPrep on your own raw BIDS (demo.enabled: false).")
        if not (fmriprep["license"] and Path(fmriprep["license"]).is_file()):
            problems.append("config key 'fmri.fmriprep.license': fMRIPrep needs a FreeSurfer "
                            f"license file ({fmriprep['license']!r} not found). Get one free at "
                            "https://surfer.nmr.mgh.harvard.edu/registration.html.")
    foundation = config["ssl"]["foundation"]
    if config["ssl"]["enabled"] and foundation["model"] and not (foundation["weights"]
                                                               and foundation["sha256"]):
        problems.append(f"config keys 'ssl.foundation.weights'/'sha256': {foundation['model']} "
                        "needs its published weights file and their SHA-256 (README: "
                        "foundation models); or set ssl.foundation.model: null.")
    names = [corpus["name"] for corpus in config["ssl"]["corpus"]]
    for index, corpus in enumerate(config["ssl"]["corpus"]):
        sources = [k for k in ("bids_root", "timeseries", "simulated") if corpus[k]]
        if not sources or ("simulated" in sources and len(sources) > 1):
            problems.append(f"config key 'ssl.corpus[{index}]' ({corpus['name']}): name its data "
                            "with bids_root and/or timeseries, or simulated (not both).")
        for key in ("bids_root", "timeseries"):
            if corpus[key] and not Path(corpus[key], "dataset_description.json").is_file():
                problems.append(f"config key 'ssl.corpus[{index}].{key}': {corpus[key]!r} is "
                                "not a BIDS dataset (no dataset_description.json). Fix the path.")
        if names.count(corpus["name"]) > 1:
            problems.append(f"config key 'ssl.corpus[{index}].name': {corpus['name']!r} names "
                            "two corpora; give each its own name.")
    sub = config["downstream"]["subtyping"]
    if sub["k_min"] > sub["k_max"]:
        problems.append("config keys 'downstream.subtyping.k_min'/'k_max': k_min > k_max.")
    return problems


class StageSettings:
    """Base of a stage's typed settings: a frozen keyword-only dataclass whose fields are the
    keys of one config section that the stage reads, in the schema's order and with its
    defaults (``tests/test_config.py`` ties both). YAML lists become tuples; a nested section
    given as a mapping becomes its settings class, its missing keys taking their defaults."""

    #: field name -> the StageSettings class of a nested section (None stays None)
    nested: ClassVar[dict[str, type[StageSettings]]] = {}

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))
            elif isinstance(value, dict) and field.name in self.nested:
                object.__setattr__(self, field.name, self.nested[field.name](**value))

    @classmethod
    def keys(cls) -> list[str]:
        """The section's keys these settings hold (what a rule passes)."""
        return [field.name for field in fields(cls)]

    @classmethod
    def from_config(cls, section: dict):
        """From a validated config section (or a rule's slice of it)."""
        return cls(**{key: section[key] for key in cls.keys()})

    def to_dict(self) -> dict:
        """Plain values (nested settings as dicts, tuples as lists), for sidecars."""
        return json.loads(json.dumps(asdict(self)))


def registering(registry: dict, name: str):
    """Decorator adding a function or class to ``registry`` under ``name`` and returning it
    unchanged: the body of every ``register_*`` of the extension points."""
    def add(entry):
        registry[name] = entry
        return entry
    return add
