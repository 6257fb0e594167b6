# The built-in demo dataset with planted truth (only when demo.enabled).
from brainrep import simulate
from brainrep.bids import confounds_path

if config["demo"]["enabled"]:

    rule simulate_demo:
        output:
            description=f"{OUT}/bids/dataset_description.json",
            participants=f"{OUT}/bids/participants.tsv",
            truth=f"{OUT}/bids/{simulate.TRUTH_RELPATH}",
            atlas=f"{OUT}/bids/{simulate.ATLAS_RELPATH}",
            atlas_labels=f"{OUT}/bids/{simulate.ATLAS_LABELS_RELPATH}",
            eeg=[r.path for r in INPUTS.eeg],
            bold=[r.path for r in INPUTS.bold],
            confounds=[confounds_path(r.path, config["fmri"]["space"]) for r in INPUTS.bold],
        params:
            root=lambda wildcards, output: Path(output.description).parent,
            spec=config["demo"],
        log:
            f"{OUT}/logs/simulate_demo.log",
        conda:
            "../../envs/bids.yaml"
        container:
            CONTAINERS.format(family="bids")
        script:
            "../scripts/simulate_demo.py"

    rule demo_data:
        input:
            rules.simulate_demo.output,
