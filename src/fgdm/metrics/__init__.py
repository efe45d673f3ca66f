"""Metrics as pure functions of arrays and strings (docs/model.md §8); nothing here trains, samples or loads.

- :mod:`fgdm.metrics.text`: BLEU-1…4, ROUGE-L, WER of back-translations;
- :mod:`fgdm.metrics.dtw`: DTW-MJE (all joints, body, hands);
- :mod:`fgdm.metrics.features`: FID and diversity of pose-encoder features;
- :mod:`fgdm.metrics.handshape`: finger bone-length ratio and handshape agreement.
"""

from fgdm.metrics.dtw import dtw_mje, dtw_mje_parts
from fgdm.metrics.features import diversity, frechet_distance
from fgdm.metrics.handshape import finger_length_ratio, handshape_agreement
from fgdm.metrics.text import bleu, rouge_l, text_scores, wer

__all__ = ["bleu", "diversity", "dtw_mje", "dtw_mje_parts", "finger_length_ratio", "frechet_distance",
           "handshape_agreement", "rouge_l", "text_scores", "wer"]  # fmt: skip
