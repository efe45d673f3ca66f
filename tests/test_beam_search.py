"""benchmarks/beam_search.py's pooled search (finished hypotheses leave the beam), which the benchmark sets against
fgdm's, checked against the search written out one sentence at a time and against every hypothesis scored."""

import importlib.util
import itertools
import sys
from pathlib import Path

import torch

from fgdm.config import BackTranslatorConfig, load_config
from fgdm.data.vocab import Vocabulary
from fgdm.model.backtranslator import BackTranslator

BOS, EOS, PAD = Vocabulary.bos_index, Vocabulary.eos_index, Vocabulary.pad_index
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))  # its sibling module, as running it puts there
_spec = importlib.util.spec_from_file_location("beam_search", Path(__file__).parents[1] / "benchmarks/beam_search.py")
beam_search = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(beam_search)


def _model(max_length: int, length_penalty: float, seed: int, eos_bias: float) -> BackTranslator:
    cfg = load_config("configs/backtranslator.yaml", ["model.width=16", "model.ff=32",
                      f"model.max_output_length={max_length}", f"model.length_penalty={length_penalty}"],
                      schema=BackTranslatorConfig)  # fmt: skip
    torch.manual_seed(seed)
    model = BackTranslator(10, 12, cfg.model).eval()
    with torch.no_grad():
        model.word_head.bias[EOS] += eos_bias  # some hypotheses end while others go on
    return model


def _words(row) -> list[int]:
    return list(itertools.takewhile(lambda w: w not in (EOS, PAD), row))


def _next_log_probs(model, memory, mask, b: int, prefixes: list[list[int]]) -> torch.Tensor:
    n = len(prefixes)
    logits = model.word_logits(memory[b : b + 1].expand(n, -1, -1), mask[b : b + 1].expand(n, -1),
                               torch.tensor(prefixes))  # fmt: skip
    return torch.log_softmax(logits[:, -1].float(), dim=-1)


def _one_sentence(model, memory, mask, b: int, k: int) -> list[int]:
    """The pooled search for sentence ``b`` alone, as its definition reads."""
    L, alpha = model.cfg.max_output_length, model.cfg.length_penalty
    live, pool = [([BOS], torch.tensor(0.0))], []
    for step in range(1, L + 1):
        logp = _next_log_probs(model, memory, mask, b, [t for t, _ in live])
        cands = sorted(((s + logp[i, w], [*t, w]) for i, (t, s) in enumerate(live) for w in range(logp.shape[1])),
                       key=lambda c: -float(c[0]))[:k]  # fmt: skip
        live = []
        for s, t in cands:
            if t[-1] == EOS or step == L:
                pool.append((float(s) / step**alpha, t))
            else:
                live.append((t, s))
        if cands[0][1][-1] == EOS or step == L:
            break
    return _words(max(pool, key=lambda p: p[0])[1][1:])


def test_the_batched_pooled_search_is_the_search_of_each_sentence_alone():
    differs = False
    for alpha, seed, bias in ((1.0, 5, 1.0), (1.0, 0, 1.0), (0.5, 2, 2.0)):
        model = _model(8, alpha, seed, bias)
        with torch.no_grad():
            memory, mask = model.encode(torch.randn(4, 9, 50, 3), torch.ones(4, 9, dtype=torch.bool))
            for k in (1, 3, 4):
                found = beam_search.pooled_search(model, memory, mask, k)
                assert found == [_one_sentence(model, memory, mask, b, k) for b in range(4)]
                differs |= found != model.translate(memory, mask, beam=k)
    assert differs  # the benchmark compares two searches that do differ


def test_a_pooled_beam_wide_enough_finds_the_most_probable_translation():
    """Without a length penalty, a beam as wide as every live prefix finds the best of all hypotheses."""
    L = 3
    model = _model(L, 0.0, 3, 2.0)
    W = model.word_head.out_features
    with torch.no_grad():
        memory, mask = model.encode(torch.randn(2, 9, 50, 3), torch.ones(2, 9, dtype=torch.bool))
        found = beam_search.pooled_search(model, memory, mask, W ** (L - 1))
        for b in range(2):
            cache: dict[tuple[int, ...], torch.Tensor] = {}

            def logp(prefix: tuple[int, ...], b=b, cache=cache) -> torch.Tensor:
                if prefix not in cache:
                    cache[prefix] = _next_log_probs(model, memory, mask, b, [[BOS, *prefix]])[0]
                return cache[prefix]

            best, best_score = (), float("-inf")
            for n in range(1, L + 1):  # n - 1 words other than </s>, then </s> (or any word at the limit)
                for words in itertools.product([w for w in range(W) if w != EOS], repeat=n - 1):
                    for w in [EOS] if n < L else range(W):
                        hyp = (*words, w)
                        score = float(sum(logp(hyp[:i])[hyp[i]] for i in range(n)))
                        if score > best_score:
                            best, best_score = hyp, score
            assert found[b] == _words(best)
