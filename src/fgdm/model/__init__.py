"""The FGDM network: plain ``nn.Module``s with no training-framework dependency."""

from fgdm.model.denoiser import Denoiser, DenoiserOutput
from fgdm.model.fgdm import FGDM, LossTerms, build_model

__all__ = ["FGDM", "Denoiser", "DenoiserOutput", "LossTerms", "build_model"]
