"""Assumptions as records (core.assumptions), worded by output/assumptions.py; Result frozen."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest

from mpg_cli.core.assumptions import Assumption
from mpg_cli.core.estimate import Efficiency, Request, Result, estimate, with_gates
from mpg_cli.core.search import Constraints
from mpg_cli.inputs.merge import with_file_notes
from mpg_cli.output.assumptions import WORDING, accuracy_text, assumption_text, assumption_texts
from mpg_cli.output.documents import estimate_body
from mpg_cli.presets import load_cluster, load_model

FIXED = Constraints(tp=1, pp=1, micro_batch=1, zero=1, recompute="none")


@lru_cache(maxsize=None)
def _estimate(model: str, cluster: str, gpus: int, source: str = "model", value: float | None = None,
              goodput: float | None = None, zero: int = 1) -> Result:
    cons = dataclasses.replace(FIXED, zero=zero)
    req = Request(model=load_model(model), cluster=load_cluster(cluster), gpus=gpus, constraints=cons,
                  efficiency=Efficiency(source=source, value=value), goodput=goodput)
    return estimate(req)


CASES = [
    ("llama3-8b", "dgx-h100", 8),
    ("mixtral-8x7b", "dgx-h100", 8),
    ("gpt-7.5b", "dgx-a100", 8, "tflops", 150.0),
    ("gpt-7.5b", "dgx-a100", 8, "mfu", 0.4, 0.9),
    ("llama3-8b", "dgx-h100", 64, "model", None, None, 3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(x) for x in c))
def test_every_record_has_a_wording_and_names_flags(case):
    """Each assumption the core returns is a record whose 'what' has a wording, with flags that look like flags."""
    r = _estimate(*case)
    assert r.assumptions and all(isinstance(a, Assumption) for a in r.assumptions)
    for a in r.assumptions:
        assert a.what in WORDING, a.what
        assert all(f.startswith("--") for f in a.flags), a
        assert assumption_text(a)


def test_the_core_records_carry_values_not_sentences():
    """The tokens record holds the number of tokens and its flag; the sentence is the renderer's."""
    r = _estimate("llama3-8b", "dgx-h100", 8)
    tokens = next(a for a in r.assumptions if a.what == "tokens")
    assert tokens.value == pytest.approx(r.tokens)
    assert tokens.flags == ("--tokens",)
    assert assumption_text(tokens) == (f"tokens: 20 per parameter (Chinchilla compute-optimal, Hoffmann et al. 2022) "
                                       f"= {r.tokens:.3g}; set --tokens")


# not 'goodput': its sentence names --checkpoint-minutes only when the interval was given (the record always lists it)
@pytest.mark.parametrize("what", ["tokens", "global_batch", "price", "memory"])
def test_the_sentence_names_every_flag_of_its_record(what):
    """For the records that say how to override them, each flag the record lists appears in its sentence."""
    r = _estimate("llama3-8b", "dgx-h100", 64, "model", None, None, 3)
    a = next(x for x in r.assumptions if x.what == what)
    text = assumption_text(a)
    assert a.flags and all(f in text for f in a.flags), (a.flags, text)


def test_json_assumptions_are_the_worded_records():
    """The JSON document's 'assumptions' is the list of the records' sentences, in order."""
    r = _estimate("mixtral-8x7b", "dgx-h100", 8)
    assert estimate_body(r)["assumptions"] == assumption_texts(r.assumptions)


def test_accuracy_text_without_cross_validated_classes():
    """With no cross-validated class to quote, the accuracy note still says what the model was fitted on."""
    assert accuracy_text(None, ()) == "(fitted on published runs; see mpg validate)"
    assert accuracy_text(12, [("moe", 0.25)]) == ("(fitted on 12 published runs; median error on unseen sources: "
                                                  "moe 25%; see mpg validate)")


def test_result_is_frozen():
    """A Result cannot be patched after the fact: assigning a field raises FrozenInstanceError."""
    r = _estimate("llama3-8b", "dgx-h100", 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.checks = ()  # type: ignore[misc]


def test_gates_make_a_new_result():
    """with_gates returns a new result with the checks; the original keeps none."""
    r = _estimate("llama3-8b", "dgx-h100", 8)
    gated = with_gates(r, max_days=1e-9, require_fit=True)
    assert r.checks == ()
    assert [c.name for c in gated.checks] == ["days", "memory_bytes_per_gpu"]
    assert not gated.checks[0].passed


def test_annotate_puts_file_notes_first_in_new_results():
    """with_file_notes returns new results with the --from notes first and the warnings added; the input is unchanged."""
    r = _estimate("llama3-8b", "dgx-h100", 8)
    opts = {"_from_notes": ["x.sh (megatron): tp 1 from --tensor-model-parallel-size"], "_from_warnings": ["w", "w"],
            "_explicit": ["seq_length"]}
    (new,) = with_file_notes([r], opts)
    texts = assumption_texts(new.assumptions)
    assert texts[:2] == ["x.sh (megatron): tp 1 from --tensor-model-parallel-size",
                         f"sequence length {r.seq_length:,} from --seq-length"]
    assert new.warnings == r.warnings + ("w",)
    assert new.assumptions[2:] == r.assumptions and r.assumptions[0].what == "tokens"
