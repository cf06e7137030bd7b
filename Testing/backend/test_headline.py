"""The README's methods table, the registry's `auto` choices and its experimental flags all
agree with the committed headline benchmark: none of them is copied by hand."""
from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT
from inference_backend.evaluation.headline import best_per_acquisition, learned_verdicts, with_table
from inference_backend.evaluation.trust_columns import AS_RUN_BY_AUTO, lesion_cells, slice_drop_cells, with_columns
from inference_backend.registry import AUTO_CHOICES, METHODS

RESULTS = REPO_ROOT / "benchmarks" / "results" / "headline" / "results.json"
LESIONS = REPO_ROOT / "benchmarks" / "results" / "lesions" / "results.json"
CLINICAL_REAL = REPO_ROOT / "benchmarks" / "results" / "clinical-real" / "results.json"


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text())


def test_the_readme_table_is_the_one_the_results_give(results):
    readme = (REPO_ROOT / "README.md").read_text()
    assert with_table(readme, results) == readme, "run benchmarks/headline_table.py"


def test_the_readme_lesion_and_real_slice_columns_are_the_ones_the_results_give():
    readme = (REPO_ROOT / "README.md").read_text()
    lesions, clinical = json.loads(LESIONS.read_text()), json.loads(CLINICAL_REAL.read_text())
    assert with_columns(readme, lesion_cells(lesions), slice_drop_cells(clinical)) == readme, "run benchmarks/headline_table.py"


def test_the_columns_show_what_auto_runs_on_thick_slices():
    assert AUTO_CHOICES["thick-slices"][0] == AS_RUN_BY_AUTO


def test_auto_chooses_the_best_method_the_results_show(results):
    for acquisition, method in best_per_acquisition(results).items():
        assert AUTO_CHOICES[acquisition][0] == method, acquisition


def test_a_default_below_its_floor_is_flagged_and_only_then(results):
    for (method, acquisition), passes in learned_verdicts(results).items():
        assert (METHODS[method].quality_note(acquisition) is None) == passes, (method, acquisition)
