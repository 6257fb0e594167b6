"""Self-supervised pretraining of torch encoders, embedding extraction and linear probes."""

from brainrep.ssl.embed import embed_folds, embed_windows
from brainrep.ssl.probe import linear_probe, probe_table
from brainrep.ssl.settings import CrossModalSettings, SSLSettings
from brainrep.ssl.train import pretrain, pretrain_crossmodal

__all__ = ["CrossModalSettings", "SSLSettings", "embed_folds", "embed_windows", "linear_probe",
           "pretrain", "pretrain_crossmodal", "probe_table"]
