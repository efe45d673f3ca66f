"""The back-translator and the evaluation report, end to end on tiny models."""

import json
import re
import shutil
import warnings

import numpy as np
import pytest
import torch

import fgdm
from fgdm.cli import main
from fgdm.config import BackTranslatorConfig, load_config
from fgdm.data.vocab import Vocabulary, tokenize_text
from fgdm.model.backtranslator import BackTranslator

TINY_BT = [
    "--set", "data.synth_train=32", "--set", "data.synth_dev=8", "--set", "data.synth_test=8",
    "--set", "data.skip_frames=3", "--set", "model.width=32", "--set", "model.ff=64",
    "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
    "--set", "training.max_steps=12", "--set", "training.val_every=6", "--set", "training.val_batches=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def backtranslator(tmp_path_factory):
    out = tmp_path_factory.mktemp("bt")
    args = ["backtranslator", "train", "configs/backtranslator.yaml", *TINY_BT, "--set", f"training.output_dir={out}"]
    assert main([*args, "--quiet"]) == 0
    return out / "checkpoints" / "last.ckpt"


def test_loading_the_backtranslator_leaves_the_random_stream_alone(backtranslator, monkeypatch):
    """Opening the evaluator mid-run must not change the noise the run draws after it. A process forked after it
    computes on one thread, as after load_for_sampling (tests/test_service.py)."""
    from fgdm.evaluation import backtranslation

    registered = []
    monkeypatch.setattr(backtranslation, "one_thread_after_fork", lambda: registered.append(True))
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    backtranslation.load_backtranslator(backtranslator)
    assert torch.equal(torch.rand(4), expected)
    assert registered


def test_tokenisation_splits_punctuation_and_lowercases():
    assert tokenize_text("Na ja, ich bin Gehörloser.") == ["na", "ja", ",", "ich", "bin", "gehörloser", "."]
    assert tokenize_text("Es wird ka\u0308lter.") == ["es", "wird", "kälter", "."]  # a combining diaeresis: NFC


def test_beam_search_returns_the_greedy_path_with_beam_1_and_stops_at_eos():
    cfg = load_config("configs/backtranslator.yaml", ["model.width=16", "model.ff=32", "model.max_output_length=6"],
                      schema=BackTranslatorConfig)  # fmt: skip
    torch.manual_seed(0)
    model = BackTranslator(10, 12, cfg.model).eval()
    pose = torch.randn(2, 9, 50, 3)
    mask = torch.ones(2, 9, dtype=torch.bool)
    memory, mmask = model.encode(pose, mask)
    greedy = model.translate(memory, mmask, beam=1)
    tokens = torch.full((2, 1), Vocabulary.bos_index)
    for _ in range(6):  # greedy decoding written out
        nxt = model.word_logits(memory, mmask, tokens)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, nxt], 1)
    for b in range(2):
        expected = []
        for w in tokens[b, 1:].tolist():
            if w in (Vocabulary.eos_index, Vocabulary.pad_index):
                break
            expected.append(w)
        assert greedy[b] == expected
    assert all(len(t) <= 6 for t in model.translate(memory, mmask, beam=3))


def test_the_evaluators_dev_wer_never_counts_unk_as_recognising_a_gloss_it_does_not_know(monkeypatch):
    """Its dev references are the glosses as written: decoded from ids, a gloss outside the vocabulary would read
    ``<unk>``, and the evaluator's ``<unk>`` there would score as right."""
    from types import SimpleNamespace

    from fgdm.config import to_dict
    from fgdm.data.dataset import Batch
    from fgdm.metrics.text import wer
    from fgdm.training.backtranslator import LitBackTranslator

    cfg = load_config("configs/backtranslator.yaml", ["model.width=16", "model.ff=32", "model.max_output_length=4"],
                      schema=BackTranslatorConfig)  # fmt: skip
    glosses = Vocabulary.from_corpus([["HAUS", "REGEN"]])
    module = LitBackTranslator(to_dict(cfg), glosses.itos, Vocabulary.from_corpus([["es", "regnet"]]).itos)
    dev = SimpleNamespace(gloss_sequences=lambda: [("HAUS", "SONNE"), ("REGEN",)])  # SONNE: not in the vocabulary
    module._trainer = SimpleNamespace(world_size=1, datamodule=SimpleNamespace(corpus={"dev": dev}.__getitem__))
    known = {"HAUS": glosses.stoi["HAUS"], "REGEN": glosses.stoi["REGEN"]}
    monkeypatch.setattr(module.model, "ctc_greedy", lambda *_: [[known["HAUS"], Vocabulary.unk_index]])
    batch = Batch(torch.tensor([[known["HAUS"], Vocabulary.unk_index]]), torch.ones(1, 2, dtype=torch.bool),
                  torch.randn(1, 4, 50, 3), torch.ones(1, 4, dtype=torch.bool), ["es regnet"], ["a"],
                  torch.tensor([0]))  # fmt: skip
    module.on_validation_epoch_start()
    module.validation_step(batch, 0)
    assert module._val["gloss_ref"] == ["HAUS SONNE"] and module._val["gloss_hyp"] == ["HAUS <unk>"]
    assert wer(module._val["gloss_hyp"], module._val["gloss_ref"]).wer == 50.0


def test_ctc_greedy_collapses_repeats_and_blanks_and_never_chooses_a_special_token():
    lp = torch.full((1, 6, 8), -10.0)
    for t, c in enumerate([0, 6, 6, 0, 6, 7]):  # class c is gloss id c - 1
        lp[0, t, c] = 0.0
    assert BackTranslator.ctc_greedy(lp, torch.ones(1, 6, dtype=torch.bool)) == [[5, 5, 6]]
    lp[0, 3, 1 + Vocabulary.eos_index] = 1.0  # </s>, never a target, would end the sentence once decoded
    lp[0, 3, 1 + Vocabulary.unk_index] = 0.5  # <unk> is one: the next best
    assert BackTranslator.ctc_greedy(lp, torch.ones(1, 6, dtype=torch.bool)) == [[5, 0, 5, 6]]


def test_evaluate_writes_a_report_with_ceiling_model_and_baseline_rows(trained, backtranslator, tmp_path, capsys):
    from fgdm.data.pt import read_split
    from fgdm.data.sources import build_corpus
    from fgdm.evaluation.backtranslation import load_backtranslator
    from fgdm.metrics import dtw_mje_parts

    ckpt = trained / "checkpoints" / "last.ckpt"
    hyp = tmp_path / "other"  # the same model, seed and lengths as evaluate's own sampling: the same poses
    assert main(["generate", "--checkpoint", str(ckpt), "--split", "test", "--limit", "5", "--seed", "0",
                 "--batch-size", "2", "--out", str(hyp), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    twin = tmp_path / "copy" / "other"  # a second system in a folder of the same name: rows told apart by path
    shutil.copytree(hyp, twin)
    out = tmp_path / "report"
    args = ["evaluate", "--backtranslator", str(backtranslator), "--checkpoint", str(ckpt), "--split", "test",
            "--limit", "5", "--batch-size", "2", "--hyp", str(hyp), "--hyp", str(twin), "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    meta = report["meta"]
    assert report["sequences"] == 5 and meta["hypotheses"] == [str(hyp), str(twin)]
    assert meta["versions"] == {"fgdm": fgdm.__version__, "torch": torch.__version__}
    # what the sampled poses depend on, the steps and η resolved from the checkpoint's config (tiny.yaml: 5, 1.0)
    device = "cuda:0" if torch.cuda.is_available() else "cpu"  # --device auto, resolved
    assert {k: meta[k] for k in ("seed", "batch_size", "device", "precision", "compile", "steps", "eta")} == {
        "seed": 0, "batch_size": 2, "device": device, "precision": "32", "compile": False, "steps": 5,
        "eta": 1.0}  # fmt: skip
    names = [r["system"] for r in report["rows"]]
    assert names[1].endswith(f", step {meta['step']})")  # the step scored, for fgdm export --report's check
    assert (
        names[0] == "ground truth" and names[-3:] == ["mean pose", str(hyp), str(twin)] and names[1].startswith("FGDM")
    )
    gt, model, mean, other, _ = report["rows"]
    # ground truth is the ceiling: exact on every pose metric
    assert gt["dtw_mje"] == {"all": 0.0, "body": 0.0, "hands": 0.0} and gt["fid"] == pytest.approx(0.0, abs=1e-6)
    assert gt["finger_ratio"] == 1.0 and gt["handshape"] == 100.0
    # one protocol: the same poses given as a hypothesis directory score exactly as sampled in place
    assert {k: v for k, v in other.items() if k != "system"} == {k: v for k, v in model.items() if k != "system"}
    # and the DTW figures are those of the poses on disk against the references
    bt = load_backtranslator(backtranslator)
    test = build_corpus(bt.cfg.data, "test")
    refs = [test[i].pose for i in range(5)]
    # the tiny back-translator saw 32 sentences: a quarter of these glosses are new to it, which is warned of
    glosses = [g for i in range(5) for g in test[i].glosses]
    unknown = 100 * sum(g not in bt.gloss_vocab for g in glosses) / len(glosses)
    assert meta["unknown_to_backtranslator_percent"]["glosses"] == round(unknown, 2) and 10 < unknown < 50
    assert len(meta["notes"]) == 1 and "reference glosses" in meta["notes"][0]
    assert "it cannot read them back" in meta["notes"][0]
    # every sentence's back-translation is kept, in the references' order, and scores as the row says
    from fgdm.evaluation.scores import text_metrics
    from fgdm.metrics import wer

    assert report["references"]["names"] == [test[i].name for i in range(5)]
    for row in (gt, model, mean):
        bt_out = row["back_translations"]
        assert len(bt_out["glosses"]) == len(bt_out["texts"]) == 5
        assert round(wer(bt_out["glosses"], report["references"]["glosses"]).wer, 2) == row["wer"]
        assert round(text_metrics(bt_out["texts"], report["references"]["texts"])["bleu4"], 2) == row["bleu4"]
    hyps = read_split(hyp, "test").poses
    expected = dtw_mje_parts(hyps, refs)
    assert model["dtw_mje"] == {k: round(v, 4) for k, v in expected.items()}
    # the mean pose: static, so off on every sequence, and its fingers are averaged shorter
    assert mean["dtw_mje"]["all"] > 0 and mean["diversity"] < gt["diversity"] and mean["finger_ratio"] < 1.0
    assert np.isfinite(model["fid"]) and model["fid"] > 0
    md = (tmp_path / "report.md").read_text()
    assert "| ground truth |" in md and "## Definitions" in md and "β = 1.2" in md and "## Notes" in md
    assert "- batch_size: `2`" in md and "- steps: `5`" in md and f"- device: `{device}`" in md and "unit-cost" in md
    page = (tmp_path / "report.html").read_text()  # self-contained: the animations inline, no outside link
    assert page.startswith("<!DOCTYPE html>") and page.count("<tr>") == 1 + len(report["rows"])
    assert "batch_size: <code>2</code>" in page and "precision: <code>32</code>" in page
    assert page.count('src="data:image/gif;base64,') == 3 and "β = 1.2" in page
    # self-contained: nothing fetched from elsewhere (the inline GIFs' base64 may spell "http" by chance)
    assert "http" not in re.sub(r'"data:[^"]*"', '""', page)
    assert page.count("<svg") == 3 and "training loss" in page and "dev DTW-MJE" in page


def test_evaluate_rejects_a_hypothesis_whose_names_do_not_match(trained, backtranslator, tmp_path, capsys):
    (tmp_path / "hyp").mkdir()
    np.save(tmp_path / "hyp" / "a.npy", np.zeros((5, 50, 3), dtype=np.float32))
    args = ["evaluate", "--backtranslator", str(backtranslator), "--split", "test", "--limit", "3",
            "--hyp", str(tmp_path / "hyp"), "--out", str(tmp_path / "r"), "--quiet"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("fgdm: error: ") and "names do not match the test split's: missing" in err
    assert "(3 in all)" in err  # all three references lack a hypothesis; the extra "a" is allowed with --limit


def test_padding_never_reaches_a_metric(trained, backtranslator):
    """A sequence scores the same alone and batched with longer ones: padded frames are masked or trimmed."""
    from fgdm.evaluation.backtranslation import back_translate, load_backtranslator
    from fgdm.sampling import generate_poses, load_for_sampling

    loaded = load_for_sampling(trained / "checkpoints" / "last.ckpt")
    ids = loaded.vocab.encode_all([["REGEN"], ["NORD", "REGEN"]])
    short, long = generate_poses(loaded, ids, [7, 19], seed=1)
    assert short.shape[0] == 7 and long.shape[0] == 19  # trimmed to each length
    bt = load_backtranslator(backtranslator)
    alone = back_translate(bt, [short])
    batched = back_translate(bt, [short, long])
    assert alone[0][0] == batched[0][0] and alone[1][0] == batched[1][0]
    np.testing.assert_allclose(alone[2][0], batched[2][0], atol=1e-5)


def test_a_trained_model_samples_in_bf16_close_to_float32(trained, monkeypatch):
    """--precision bf16: the same lengths (the length head stays float32) and poses within bfloat16 rounding;
    a CPU without bfloat16 instructions (AMX, AVX512-BF16) is warned about."""
    from fgdm.sampling import generate_poses, load_for_sampling

    ckpt = trained / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match="precision 'fp16': use one of 32, bf16"):
        load_for_sampling(ckpt, precision="fp16")
    with monkeypatch.context() as m:
        m.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        m.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
        with pytest.warns(UserWarning, match=r"no bfloat16 instructions \(AMX, AVX512-BF16\)"):
            load_for_sampling(ckpt, precision="bf16")
        m.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # AMD Zen 4: bf16 0.75 of float32's time
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_for_sampling(ckpt, precision="bf16")
    full, low = load_for_sampling(ckpt), load_for_sampling(ckpt, precision="bf16")
    general = low.model.denoiser.general.layers.layers[0]
    assert low.precision == "bf16" and general.linear1.weight.dtype == torch.bfloat16
    ids = full.vocab.encode_all([["REGEN"], ["NORD", "REGEN"]])
    a, b = generate_poses(full, ids, None, seed=1), generate_poses(low, ids, None, seed=1)
    assert [len(x) for x in a] == [len(x) for x in b]
    for x, y in zip(a, b, strict=True):
        assert y.dtype == np.float32 and np.sqrt(np.mean((x - y) ** 2)) < 0.02 * x.std()


def test_report_paths_keep_a_dotted_name_and_cards_say_what_they_are(tmp_path):
    from fgdm.config import to_dict
    from fgdm.evaluation.report import model_card, report_paths

    assert [p.name for p in report_paths(tmp_path / "v1.5")] == ["v1.5.json", "v1.5.md", "v1.5.html"]
    assert [p.name for p in report_paths(tmp_path / "r.json")] == ["r.json", "r.md", "r.html"]
    assert report_paths(tmp_path)[0] == tmp_path / "report.json"  # a directory
    assert report_paths(f"{tmp_path}/new/")[0] == tmp_path / "new" / "report.json"  # one to be made
    cfg = to_dict(load_config("configs/tiny.yaml"))
    embedded = model_card("m", cfg, 10, 40)
    assert "Limits: a synthetic language" in embedded and "--checkpoint THIS_DIRECTORY" in embedded
    cfg["data"]["path"], cfg["training"]["ema_decay"] = "data/phoenix", None
    real = model_card("m", cfg, 10, 40)
    assert "- data: data/phoenix" in real and "Limits" not in real and "no EMA" in real
    assert "--gloss 'HAUS BAUM' --out" in model_card("m", cfg, 10, 40, example="HAUS BAUM")
    # DGS's glosses hold $ (which double quotes leave to the shell) and quotes: the command pastes as written
    card = model_card("m", cfg, 10, 40, example="ICH1 $INDEX1* WIE'S")
    assert """--gloss 'ICH1 $INDEX1* WIE'"'"'S' --out""" in card
    assert "8.333 frames per second" in card and "at batch 8," in card and "Focal 1 layer, General" in card
    cfg["training"]["devices"], cfg["model"]["focal"]["enabled"] = 4, False  # batch_size is per process
    card = model_card("m", cfg, 10, 40)
    assert "at batch 32 (8 per process × 4)," in card and "General 1 layer, no Focal;" in card
    report = {"sequences": 2, "rows": [{"system": "FGDM", **dict.fromkeys(["bleu1", "bleu4", "rouge_l", "wer", "fid",
              "finger_ratio", "handshape", "diversity"], 1.0), "dtw_mje": {"all": 1.0, "body": 1.0, "hands": 1.0}}],
              "definitions": {"WER": "word error rate"}, "meta": {"split": "dev", "steps": 10, "length": "gt",
              "precision": "bf16", "seed": 3, "backtranslator_step": 900}}  # fmt: skip
    card = model_card("m", cfg, 10, 40, report)
    assert "sampled with steps 10, length gt, precision bf16, seed 3, scored by a back-translator trained on " in card
    assert "ground truth, step 900 (`fgdm evaluate`)" in card and "- WER: word error rate" in card
    assert "notes" not in card
    report["meta"]["notes"] = ["a quarter of the reference glosses are unknown to the back-translator"]
    assert "The report's notes:\n\n- a quarter of the reference glosses are unknown" in model_card(
        "m", cfg, 10, 40, report
    )


def test_sequences_sampled_longer_than_the_model_learnt_are_in_the_reports_notes(trained, backtranslator, tmp_path):
    from fgdm import LongSequenceWarning

    args = ["evaluate", "--backtranslator", str(backtranslator), "--checkpoint", str(trained / "checkpoints" /
            "last.ckpt"), "--split", "test", "--limit", "2", "--length", "200", "--out", str(tmp_path / "r"),
            "--quiet"]  # fmt: skip
    with pytest.warns(LongSequenceWarning, match=r"^sampling: 2 sequence\(s\) longer than 1.5 × the longest"):
        assert main(args) == 0
    notes = json.loads((tmp_path / "r.json").read_text())["meta"]["notes"]
    assert [n for n in notes if n.startswith("sampling: 2 sequence(s) longer than")]


def test_evaluate_refuses_one_sequence_and_warns_of_two_languages(trained, backtranslator, tmp_path, capsys):
    from fgdm.config import DataConfig
    from fgdm.evaluation.protocol import _language

    args = ["evaluate", "--backtranslator", str(backtranslator), "--split", "test", "--out", str(tmp_path / "r"),
            "--quiet"]  # fmt: skip
    no_model = r"no checkpoint and no hypotheses \(--checkpoint, --hyp\): the report scores no model, only the ground"
    with warnings.catch_warnings(record=True) as caught:  # a bad argument's error comes alone
        warnings.simplefilter("always")
        assert main([*args, "--limit", "1"]) == 1
    assert not [w for w in caught if re.search(no_model, str(w.message))]
    assert (
        "1 sequence(s) of the test split to evaluate (--limit 1): FID and diversity need 2" in capsys.readouterr().err
    )
    with pytest.warns(UserWarning, match=no_model), pytest.warns(UserWarning, match=r"^steps, seed: no checkpoint "
                                                                    "is sampled, so they change nothing"):  # fmt: skip
        assert main([*args, "--limit", "2", "--steps", "3", "--seed", "4"]) == 0  # a ceiling check: said, and done
    assert _language(DataConfig(synth_seed=1)) != _language(DataConfig(synth_seed=0))
    assert _language(DataConfig(path=str(tmp_path))) == _language(DataConfig(path=str(tmp_path / "." / "")))
    with pytest.warns(UserWarning, match=r"the generator was trained on .* seed 0, the back-translator on .* seed 5"):
        bt = tmp_path / "bt5.ckpt"  # the same evaluator, said to be trained on another language
        ckpt = torch.load(backtranslator, weights_only=False)
        ckpt["hyper_parameters"]["config"]["data"]["synth_seed"] = 5
        torch.save(ckpt, bt)
        from fgdm.evaluation.protocol import evaluate

        evaluate(bt, trained / "checkpoints" / "last.ckpt", split="test", limit=2)


def test_a_checkpoint_of_the_other_kind_is_named_as_such(trained, backtranslator):
    from fgdm.evaluation.backtranslation import load_backtranslator
    from fgdm.sampling import load_for_sampling

    with pytest.raises(ValueError, match="a back-translator's checkpoint, not a generator's"):
        load_for_sampling(backtranslator)
    with pytest.raises(ValueError, match="a generator's checkpoint, not a back-translator's"):
        load_backtranslator(trained / "checkpoints" / "last.ckpt")


def test_the_reports_curves_span_every_log_of_a_resumed_run(tmp_path):
    from fgdm.evaluation.html import read_curves, run_logs

    def log(version, rows):
        path = tmp_path / "run" / "logs" / f"version_{version}" / "metrics.csv"
        path.parent.mkdir(parents=True)
        path.write_text("step,train/loss,dev/dtw\n" + "".join(f"{s},{loss},{dtw}\n" for s, loss, dtw in rows))

    log(0, [(9, 1.0, ""), (19, 0.8, ""), (19, "", 5.0), (29, 0.7, "")])  # stopped at 30; resumed from step 20
    log(1, [(29, 0.6, ""), (39, 0.5, ""), (39, "", 4.0)])
    log(10, [(49, 0.4, "")])  # versions in numeric order, not by name
    found = run_logs(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert [p.parent.name for p in found] == ["version_0", "version_1", "version_10"]
    curves = read_curves(found)
    # the first run's step 29 was trained over again after the resume: the later log's replaces it
    assert curves["train/loss"] == [(9, 1.0), (19, 0.8), (29, 0.6), (39, 0.5), (49, 0.4)]
    assert curves["dev/dtw"] == [(19, 5.0), (39, 4.0)]
    assert read_curves(found[0])["train/loss"] == [(9, 1.0), (19, 0.8), (29, 0.7)]


def test_a_report_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """The page is written last and slowest (its animations): failing there leaves the old three files."""
    import fgdm.evaluation.html as page
    from fgdm.evaluation.report import write_report

    report = {"sequences": 2, "rows": [], "definitions": {}, "meta": {"split": "test"}}
    paths = write_report(report, tmp_path / "r")
    before = [p.read_text() for p in paths]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(page, "write_html", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report({**report, "sequences": 3}, tmp_path / "r")
    assert [p.read_text() for p in paths] == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "r.html", "r.json", "r.md"]  # fmt: skip


def test_a_report_of_the_first_release_still_reads(tmp_path):
    """report.json files written before a column existed still read and draw their table (the column blank), as
    fgdm export --report reads them for a model card."""
    from fgdm.evaluation.report import COLUMNS, markdown_table, read_report

    first = {"system": "FGDM", "bleu1": 40.0, "bleu4": 20.0, "rouge_l": 45.0, "wer": 50.0, "fid": 1.5,
             "diversity": 3.0, "dtw_mje": {"all": 1.0, "body": 0.5, "hands": 1.5}}  # fmt: skip
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"sequences": 2, "rows": [first]}))
    heading, _, row = markdown_table(read_report(path)).splitlines()
    cells = dict(zip(heading.strip("|").split("|"), row.strip("|").split("|"), strict=True))
    later = {"finger ratio", "handshape"}  # columns added after the first release (a new one goes here too)
    assert {name for name, _ in COLUMNS if cells[f" {name} "].strip() == "nan"} == later


GLOSS_REFS = ["AB-SO DANKE2* $INDEX1 neg-HABEN", "WETTER MORGEN"]  # DGS corpus glosses: one token each
TEXT_REFS = ["Na ja, ich bin Gehörloser.", "Morgen regnet es im Norden!"]


def test_score_computes_each_metric_as_evaluate_does(backtranslator, tmp_path):
    """The same strings score the same through fgdm score and through an evaluation: WER of the glosses as
    written, BLEU and ROUGE of the lower-cased, punctuation-split text (a back-translated <unk> one token)."""
    from fgdm.data.corpus import Sample
    from fgdm.evaluation.backtranslation import load_backtranslator
    from fgdm.evaluation.protocol import Evaluator
    from fgdm.evaluation.scores import System, score_text_files

    rng = np.random.default_rng(0)
    poses = [rng.normal(size=(9, 50, 3)).astype(np.float32) for _ in GLOSS_REFS]
    refs = zip(GLOSS_REFS, TEXT_REFS, poses, strict=True)
    samples = [Sample(tuple(g.split()), p, t, f"s{i}") for i, (g, t, p) in enumerate(refs)]
    bt = load_backtranslator(backtranslator)
    with pytest.warns(
        UserWarning, match=r"4 of 6 reference glosses \(66\.7 %, e\.g\. AB-SO DANKE2\* \$INDEX1 neg-HABEN\)"
    ):
        ev = Evaluator(bt, samples)  # none of these glosses is the embedded language's
    hyp_gloss = ["AB-SO DANKE2 $INDEX1 NEG-HABEN", "WETTER"]  # 2 substitutions, 1 deletion: 3 of 6
    hyp_text = ["na ja , ich bin <unk> .", "morgen regnet es ."]  # as the back-translator writes text
    row = ev.score(System("x", poses), translated=(hyp_gloss, hyp_text, ev.ref.features + 0.1))
    files = {}
    for name, lines in {"hg": hyp_gloss, "rg": GLOSS_REFS, "ht": hyp_text, "rt": TEXT_REFS}.items():
        files[name] = tmp_path / f"{name}.txt"
        files[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    gloss = score_text_files(files["hg"], files["rg"])
    text = score_text_files(files["ht"], files["rt"])
    assert row["wer"] == round(gloss["wer"], 2) == 50.0  # tokenised, it would be 2 of 12 (16.67)
    assert gloss["wer_tokens"] == "as written"
    assert row["wer_counts"] == {"sub": 2, "del": 1, "ins": 0, "ref": 6} == gloss["wer_counts"]  # one form
    keys = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")
    assert {k: row[k] for k in keys} == {k: round(text[k], 2) for k in keys}
    assert 0 < row["bleu1"] < 100 and row["bleu4"] > 0  # the text was scored, not both sides empty


def _dev_only(bt, directory, foreign: int) -> list[str]:
    """A PT directory with only a dev split (4 sequences of the back-translator's data), the glosses of the last
    ``foreign`` of them another language's; the reference glosses."""
    from dataclasses import replace

    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.sources import build_corpus

    test = build_corpus(replace(bt.cfg.data, skip_frames=1), "test")  # read back at the evaluator's rate
    samples = [test[i] for i in range(4)]
    glosses = [list(s.glosses) for s in samples[: 4 - foreign]] + [GLOSS_REFS[0].split()] * foreign
    write_split(directory, "dev", PTSplit([s.pose for s in samples], glosses, [s.text for s in samples],
                                          [s.name for s in samples]))  # fmt: skip
    return [g for line in glosses for g in line]


def test_evaluate_scores_data_without_a_train_split_and_warns_of_unknown_glosses(backtranslator, tmp_path):
    """Scoring other systems needs no train split: the mean-pose row is left out and the report says so; and
    references the back-translator does not know are warned of, with their share."""
    from fgdm.evaluation.backtranslation import load_backtranslator

    bt = load_backtranslator(backtranslator)
    glosses = _dev_only(bt, tmp_path / "data", foreign=2)
    n, total = sum(g not in bt.gloss_vocab for g in glosses), len(glosses)  # 8 foreign, some new to the tiny one
    args = ["evaluate", "--backtranslator", str(backtranslator), "--data", str(tmp_path / "data"), "--split", "dev",
            "--out", str(tmp_path / "r"), "--quiet"]  # fmt: skip
    with pytest.warns(UserWarning) as caught:
        assert main(args) == 0
    said = [str(w.message) for w in caught]
    unknown = f"{n} of {total} reference glosses ({100 * n / total:.1f} %, e.g. AB-SO DANKE2* $INDEX1 neg-HABEN"
    assert 8 <= n < total and any(m.startswith(unknown) and "back-translator's vocabularies" in m for m in said)
    assert any("has no train split: the report leaves out the mean-pose row" in m for m in said)
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["system"] for r in report["rows"]] == ["ground truth"]
    # what identifies the evaluator (a paper's reader compares reports by it); no sampling: no sampling settings
    from fgdm.evaluation.backtranslation import weights_digest

    meta = report["meta"]
    assert meta["backtranslator_weights"] == weights_digest(bt.model) and len(meta["backtranslator_weights"]) == 16
    assert meta["backtranslator_step"] == torch.load(backtranslator, weights_only=False)["global_step"] > 0
    assert meta["fps"] == 25 / bt.cfg.data.skip_frames and "checkpoint" not in meta and "steps" not in meta
    assert report["meta"]["unknown_to_backtranslator_percent"]["glosses"] == round(100 * n / total, 2)
    assert len(report["meta"]["notes"]) == 2 and report["meta"]["notes"][0].startswith(unknown)
    md, page = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    for text in (md, page):
        assert "no mean-pose row" in text and "has no train split" in text and "Notes" in text


def test_evaluate_tells_glosses_unseen_in_training_from_another_corpus(backtranslator, tmp_path):
    """Most reference glosses unknown to the back-translator: where it knows the data's training split, they are
    that corpus's glosses unseen in training (a small corpus), not another language's, as it asked before."""
    from dataclasses import replace

    from fgdm.data.pt import PTSplit, write_split
    from fgdm.data.sources import build_corpus
    from fgdm.evaluation.backtranslation import load_backtranslator

    bt = load_backtranslator(backtranslator)
    _dev_only(bt, tmp_path / "data", foreign=4)
    train = build_corpus(replace(bt.cfg.data, skip_frames=1), "train")
    known = [train[i] for i in range(4)]
    args = ["evaluate", "--backtranslator", str(backtranslator), "--data", str(tmp_path / "data"), "--split", "dev",
            "--out", str(tmp_path / "r"), "--quiet", "--overwrite"]  # fmt: skip
    for glosses, says in (
        ([list(s.glosses) for s in known], "unseen in the training split, whose glosses it knows. Its"),
        ([GLOSS_REFS[0].split()] * 4, "another language or corpus? Its BLEU"),
    ):
        write_split(tmp_path / "data", "train", PTSplit([s.pose for s in known], glosses, [s.text for s in known],
                                                        [s.name for s in known]))  # fmt: skip
        with pytest.warns(UserWarning) as caught:
            assert main(args) == 0
        assert any(f"back-translator's vocabularies: {says}" in str(w.message) for w in caught)


def test_evaluate_says_what_reading_pose_hypotheses_changed(backtranslator, tmp_path, capsys):
    """.pose hypotheses with a hand never seen (scored on its wrist) or off fgdm's canvas (normalised) were scored
    so silently: evaluate warns and its report's notes say how many files were changed. A flat folder of the
    synthetic data's names, which every split shares, is refused: it could hold another split's outputs."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    from fgdm.data import holistic
    from fgdm.data.io import save_npy, save_pose
    from fgdm.data.sources import build_corpus
    from fgdm.evaluation.backtranslation import load_backtranslator

    bt = load_backtranslator(backtranslator)
    test, fps = build_corpus(bt.cfg.data, "test"), 25 / bt.cfg.data.skip_frames
    first, second = test[0], test[1]
    hyp = tmp_path / "hyp"  # hyp/test/synth-00000.pose: matched by path
    data, conf = holistic.to_holistic(first.pose)
    left = holistic.start("LEFT_HAND_LANDMARKS")
    conf[:, 0, left : left + 21] = 0  # the left hand never seen
    (hyp / "test").mkdir(parents=True)
    with open(hyp / f"{first.name}.pose", "wb") as f:
        Pose(PoseHeader(0.2, PoseHeaderDimensions(1000, 1000, 1000), holistic.components()),
             NumPyPoseBody(fps=fps, data=data, confidence=conf)).write(f)  # fmt: skip
    save_pose(hyp / f"{second.name}.pose", second.pose * 0.2, fps=fps)  # shrunken: off fgdm's canvas
    args = ["evaluate", "--backtranslator", str(backtranslator), "--split", "test", "--limit", "2", "--out",
            str(tmp_path / "r"), "--quiet"]  # fmt: skip
    said = r"--hyp .*hyp: of its 2 \.pose files scored, 1 has points missing in every frame .* 1 is not on fgdm's"
    with pytest.warns(UserWarning, match=said):
        assert main([*args, "--hyp", str(hyp)]) == 0
    notes = [n for n in json.loads((tmp_path / "r.json").read_text())["meta"]["notes"] if n.startswith("--hyp")]
    assert len(notes) == 1 and f"({21 * len(first.pose)} joint values put at their anchors" in notes[0]
    assert f"- {notes[0]}" in (tmp_path / "r.md").read_text()
    for sample in (first, second):  # the same names directly in a folder: the dev split's outputs, say
        save_npy(tmp_path / "flat" / f"{sample.name.split('/')[1]}.npy", sample.pose)
    capsys.readouterr()
    assert main([*args, "--overwrite", "--hyp", str(tmp_path / "flat")]) == 1
    err = capsys.readouterr().err
    assert "flat: its files lie directly in it and the data's train split has their names too" in err
    assert "('test/synth-00000' and 'train/synth-00000')" in err and "folder named test" in err


def test_a_hypothesis_row_is_named_by_its_folder_or_the_folder_above_a_split(tmp_path, monkeypatch):
    from fgdm.evaluation.protocol import hypothesis_labels

    monkeypatch.chdir(tmp_path)
    assert hypothesis_labels(["other", "runs/b/", "sys/test", "test"]) == ["other", "b", "sys", tmp_path.name]
    assert hypothesis_labels(["a/other", "b/other/test", "c"]) == ["a/other", "b/other/test", "c"]  # two 'other's


def test_hypotheses_are_checked_before_the_ground_truth_is_back_translated(backtranslator, tmp_path, monkeypatch):
    """A wrong --hyp folder was refused only after the whole split's ground truth was back-translated (20 s on the
    synthetic test split, minutes on PHOENIX's): now the back-translation waits for the hypotheses."""
    from fgdm.data.io import save_npy
    from fgdm.evaluation import protocol

    def never(*args, **kwargs):
        raise AssertionError("back-translated before the hypotheses were read")

    monkeypatch.setattr(protocol.Reference, "build", never)
    save_npy(tmp_path / "h" / "test" / "nobody.npy", np.zeros((4, 50, 3), np.float32))
    with pytest.raises(ValueError, match=r"its names do not match the test split's: missing"):
        protocol.evaluate(backtranslator, split="test", hypotheses=[tmp_path / "h"], limit=3)


def test_evaluate_takes_one_hypothesis_folder_as_a_list_of_one(backtranslator, tmp_path, monkeypatch):
    from fgdm.evaluation.protocol import evaluate

    monkeypatch.chdir(tmp_path)
    for one in ("other", tmp_path / "other"):  # not the folders o, t, h, … of a string; a Path is no list either
        with pytest.raises(Exception, match=r"other: hypothesis directory not found"):
            evaluate(backtranslator, hypotheses=one, split="test", limit=2)
