"""Self-supervised pretraining of torch encoders and embedding extraction."""

from brainrep.ssl.embed import embed_windows
from brainrep.ssl.train import pretrain

__all__ = ["embed_windows", "pretrain"]
