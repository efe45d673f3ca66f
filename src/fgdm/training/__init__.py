"""Training on PyTorch Lightning: FGDM (:func:`train`) and the back-translator (:func:`train_backtranslator`),
both through one loop (:func:`fit`) and one data module."""

from fgdm.training.backtranslator import LitBackTranslator, train_backtranslator
from fgdm.training.checkpoints import AtomicCheckpointIO
from fgdm.training.generator import LitFGDM, train
from fgdm.training.loop import TrainResult, fit

__all__ = ["AtomicCheckpointIO", "LitBackTranslator", "LitFGDM", "TrainResult", "fit", "train", "train_backtranslator"]
