"""The SSL stage's settings: ``ssl.<modality>`` (with the shared ``ssl.seed`` and
``ssl.device``) and ``ssl.crossmodal``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from brainrep.config import StageSettings

#: what the ``pretraining`` column says of an encoder pretrained on ``ssl_pretrain``'s
#: {pretrain}: other participants (``corpus``), everyone (``transductive``); ``fold<k>``
#: encoders are ``train_folds``
PRETRAINING = {"corpus": "corpus", "all": "transductive"}


def finetuned_pretraining(encoder: str, pretrain: list[str]) -> str:
    """What a fine-tuned ``encoder`` was pretrained on before its label: ``none`` for random
    init, ``published`` for a foundation model, else that of the ``pretrain`` checkpoints
    (``corpus``, ``transductive`` or ``train_folds``)."""
    if encoder in ("random", "foundation"):
        return {"random": "none", "foundation": "published"}[encoder]
    return PRETRAINING.get(pretrain[0], "train_folds")


@dataclass(frozen=True, kw_only=True)
class SSLSettings(StageSettings):
    """One modality's pretraining (:func:`~brainrep.ssl.pretrain`): the ``objective`` of
    :data:`~brainrep.ssl.objectives.OBJECTIVES`, the ``encoder`` of
    :data:`~brainrep.ssl.encoders.ENCODERS` (or ``braindecode:<Model>``) and its sizes
    (``embedding_dim``, ``width``, ``depth``, ``patch_size`` in samples), the
    ``augmentations`` (None: the modality's defaults, :meth:`for_modality`), AdamW with
    ``learning_rate`` on batches of ``batch_size`` windows (gradients of
    ``accumulate_batches`` batches per step) for at most ``epochs`` epochs,
    stopping after ``patience`` epochs without a better held-out loss; the objectives'
    ``temperature``, ``mask_ratio``, ``contrastive_weight``, ``tau_pos`` and ``tau_neg`` (in
    windows); an ``init_checkpoint`` to start from (its ``init_checkpoint_sha256``), trained
    further only with ``fine_tune``; the ``seed`` and the ``device`` (auto, cpu or cuda)."""

    objective: str = "contrastive"
    encoder: str = "conv"
    embedding_dim: int = 32
    width: int = 32
    depth: int = 2
    patch_size: int = 20
    augmentations: tuple[str, ...] | None = None
    epochs: int = 30
    patience: int = 10
    batch_size: int = 64
    accumulate_batches: int = 1
    learning_rate: float = 1e-3
    temperature: float = 0.2
    mask_ratio: float = 0.3
    contrastive_weight: float = 0.5
    tau_pos: int = 1
    tau_neg: int = 5
    init_checkpoint: str | None = None
    init_checkpoint_sha256: str | None = None
    fine_tune: bool = True
    seed: int = 0
    device: str = "auto"

    def for_modality(self, modality: str) -> SSLSettings:
        """These settings with ``modality``'s default augmentations where none are set."""
        from brainrep.ssl.augment import DEFAULTS

        return self if self.augmentations else replace(self,
                                                       augmentations=DEFAULTS[modality])


@dataclass(frozen=True, kw_only=True)
class CrossModalSettings(StageSettings):
    """EEG and fMRI encoders trained together (:func:`~brainrep.ssl.pretrain_crossmodal`):
    each modality's encoder, augmentations and SimCLR term from ``eeg`` and ``fmri``, the
    cross-modal InfoNCE term weighted by ``weight``, every term at ``temperature``, and the
    shared training loop (``epochs``, ``patience``, ``batch_size``, ``accumulate_batches``,
    ``learning_rate``,
    ``seed``, ``device``)."""

    nested = {"eeg": SSLSettings, "fmri": SSLSettings}

    weight: float = 1.0
    epochs: int = 30
    patience: int = 10
    batch_size: int = 64
    accumulate_batches: int = 1
    learning_rate: float = 1e-3
    temperature: float = 0.2
    eeg: SSLSettings = field(default_factory=SSLSettings)
    fmri: SSLSettings = field(default_factory=lambda: SSLSettings(objective="masked"))
    seed: int = 0
    device: str = "auto"

    def for_modalities(self) -> CrossModalSettings:
        """These settings with each modality's default augmentations where none are set."""
        return replace(self, eeg=self.eeg.for_modality("eeg"),
                       fmri=self.fmri.for_modality("fmri"))


@dataclass(frozen=True, kw_only=True)
class FinetuneSettings(StageSettings):
    """``ssl.finetune``: fine-tuning an encoder and a linear head with a label
    (:mod:`brainrep.ssl.finetune`): AdamW at ``learning_rate`` with ``weight_decay`` (CBraMod's
    fine-tuning settings, Wang et al. 2025), batches of ``batch_size`` windows, at most
    ``epochs`` epochs (the papers train 50 on a GPU), stopping after ``patience`` epochs
    without a better loss on held-out training participants; the ``seed`` and ``device``
    (``ssl.seed``, ``ssl.device``)."""

    epochs: int = 10
    patience: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.05
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True, kw_only=True)
class FoundationSettings(StageSettings):
    """A published EEG foundation model (:mod:`brainrep.ssl.foundation`): the braindecode
    class ``model`` of :data:`~brainrep.ssl.foundation.FOUNDATION_MODELS`, its published
    ``weights`` file and their ``sha256``; the ``device`` (``ssl.device``)."""

    model: str | None = None
    weights: str | None = None
    sha256: str | None = None
    device: str = "auto"


@dataclass(frozen=True, kw_only=True)
class ProbeSettings(StageSettings):
    """``ssl.probe``: the window-table or participants.tsv ``column`` a linear probe predicts
    from window embeddings (None: no probe), in ``n_splits`` participant-grouped splits."""

    column: str | None = None
    n_splits: int = 5
