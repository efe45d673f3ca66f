"""Training the back-translation evaluator, on ground-truth poses only (``fgdm backtranslator train``)."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric

from fgdm.config import BackTranslatorConfig, from_dict, to_dict
from fgdm.data.dataset import Batch, pad_sequences
from fgdm.data.vocab import Vocabulary, tokenize_text
from fgdm.metrics.text import bleu, wer
from fgdm.model.backtranslator import BackTranslator
from fgdm.training.data import PoseDataModule
from fgdm.training.loop import ScheduledModule, TrainResult, fit, seed_everything
from fgdm.training.ranks import dev_batch, joined, quiet_workers, require_multinode_launch
from fgdm.training.rundir import claim, with_absolute_paths


def encode_texts(texts: list[str], vocab: Vocabulary, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, T) ``<s> words </s>`` ids padded with ``<pad>``."""
    rows = [[vocab.bos_index, *vocab.encode(tokenize_text(t)), vocab.eos_index] for t in texts]
    return pad_sequences(rows, vocab.pad_index, torch.long)[0].to(device)


class LitBackTranslator(ScheduledModule):
    """The evaluator in Lightning; the checkpoint carries its config and both vocabularies."""

    def __init__(self, config: dict, gloss_vocab: list[str], text_vocab: list[str]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg: BackTranslatorConfig = from_dict(config, BackTranslatorConfig)
        self.training_cfg = self.cfg.training
        self.gloss_vocab, self.text_vocab = Vocabulary(gloss_vocab), Vocabulary(text_vocab)
        self.model = BackTranslator(len(self.gloss_vocab), len(self.text_vocab), self.cfg.model)
        self._val: dict[str, list[str]] = {"gloss_hyp": [], "gloss_ref": [], "text_hyp": [], "text_ref": []}
        self.val_loss = MeanMetric()
        self._dev_glosses: list[tuple[str, ...]] = []

    def _step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        words = encode_texts(batch.texts, self.text_vocab, batch.pose.device)
        return self.model.loss(batch.pose, batch.frame_mask, batch.gloss, batch.gloss_mask, words)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        total, ctc, ce = self._step(batch)
        self.check_finite(total)
        self.log_training_terms(len(batch), loss=total, ctc=ctc, translation=ce)
        return total

    def on_validation_epoch_start(self) -> None:
        """The dev split's glosses as written: decoded from the batch's ids, a gloss the vocabulary lacks would be
        ``<unk>``, and the evaluator's ``<unk>`` would count as recognising it."""
        self._dev_glosses = self.trainer.datamodule.corpus("dev").gloss_sequences()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        if dev_batch(self._trainer, batch_idx) is None:  # a rank's filler: its sequences are another rank's
            return
        total, _, _ = self._step(batch)
        self.val_loss.update(total, len(batch))
        memory, mask = self.model.encode(batch.pose, batch.frame_mask)
        glosses = self.model.ctc_greedy(self.model.gloss_log_probs(memory), mask)
        texts = self.model.translate(memory, mask, beam=1)  # greedy while training; beam at evaluation
        v = self._val
        v["gloss_hyp"] += [" ".join(self.gloss_vocab.decode(g)) for g in glosses]
        v["gloss_ref"] += [" ".join(self._dev_glosses[i]) for i in batch.index.tolist()]
        v["text_hyp"] += [" ".join(self.text_vocab.decode(t)) for t in texts]
        v["text_ref"] += [" ".join(tokenize_text(t)) for t in batch.texts]

    def on_validation_epoch_end(self) -> None:
        """Corpus scores over every rank's sequences: the ranks' lists are joined first."""
        v = joined(self.trainer, self._val)
        w = wer(v["gloss_hyp"], v["gloss_ref"]).wer
        b4 = bleu(v["text_hyp"], v["text_ref"])["bleu4"]
        self._val = {key: [] for key in self._val}
        self.log("dev/loss", self.val_loss.compute())
        self.val_loss.reset()
        self.log("dev/wer", w, prog_bar=True)
        self.log("dev/bleu4", b4, prog_bar=True)
        self.after_validation(w)


def train_backtranslator(
    cfg: BackTranslatorConfig, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> TrainResult:
    """Trains the evaluator on ground-truth poses; the best checkpoint is the one with the lowest dev WER."""
    cfg = with_absolute_paths(cfg)
    config = to_dict(cfg)
    quiet_workers()
    require_multinode_launch(cfg.training.num_nodes)
    with claim(cfg.training.output_dir, config, BackTranslatorConfig, resume, overwrite) as stored:
        seed_everything(cfg.training.seed)  # the initial weights come from training.seed
        vocab = Vocabulary(stored["gloss_vocab"]) if stored else None
        data = PoseDataModule(cfg.data, cfg.training, cfg.testing.batch_size, vocab)
        train = data.corpora["train"]
        text_vocab = (Vocabulary(stored["text_vocab"]) if stored else
                      Vocabulary.from_corpus(tokenize_text(text) for text in train.texts()))  # fmt: skip
        if stored:  # the resumed run's vocabularies: of other data, it would train on <unk>
            why = "the run being resumed was trained on other data (it would train on <unk>)"
            data.vocab.require_mostly_known(train.gloss_sequences(), "the training split", why=why)
            text_vocab.require_mostly_known(map(tokenize_text, train.texts()), "the training split's translations",
                                            why=why, unit="words")  # fmt: skip
        module = LitBackTranslator(config, data.vocab.itos, text_vocab.itos)
        return fit(module, data, cfg.training, config, "dev/wer", resume, progress)
