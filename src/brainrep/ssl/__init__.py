"""SSL stage (``workflow/rules/ssl.smk``): self-supervised pretraining of torch encoders
(:mod:`.encoders`, :mod:`.augment`, :mod:`.objectives`, :mod:`.pools`, :mod:`.train`,
:mod:`.checkpoints`), embedding extraction (:mod:`.embed`), linear probes (:mod:`.probe`),
fine-tuning (:mod:`.finetune`), a pretraining corpus kept apart from the cohort
(:mod:`.corpus`) and published EEG foundation models (:mod:`.foundation`); settings in
:mod:`.settings`. Submodules load on first use of one of their names (SPEC 1,
``lazy_loader``): planning reads the settings without importing torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "corpus": ["LeakageError", "check_disjoint", "model_card", "recording_hashes"],
    "embed": ["embed_folds", "embed_windows"],
    "finetune": ["encoder_finetuned", "finetune_probabilities", "finetune_scores"],
    "probe": ["linear_probe", "probe_table"],
    "settings": ["CrossModalSettings", "FinetuneSettings", "FoundationSettings", "ProbeSettings",
                 "SSLSettings"],
    "train": ["pretrain", "pretrain_crossmodal"],
})
