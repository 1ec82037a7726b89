"""The export's verification in words a user can act on (engine/export/verify.py): plain tensors, no model."""

from __future__ import annotations

import pytest
import torch

from engine.export.verify import Verification, VerificationError, compare


def test_a_change_below_the_dtypes_precision_says_to_export_in_float32():
    """A 2-step run exported in bfloat16 failed with "the training left no trace in it: check the run": the run had
    trained, by less than bfloat16 holds. The sentence names the dtype, its tolerance and what to change."""
    base = [torch.zeros(2, 4)]
    trained = [torch.full((2, 4), 0.01)]  # within bfloat16's tolerance of the base
    with pytest.raises(VerificationError) as refused:
        compare(Verification(dtype="bfloat16"), trained, trained, base)
    said = str(refused.value)
    assert "left no trace" in said and "within the bfloat16 tolerance 0.05" in said and "Export in float32" in said
    compare(Verification(dtype="float32"), trained, trained, base)  # float32 holds the change: verified
