"""The one categorizer: every event name from FACTS.md lands where a performance engineer would put it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sme2tui.analysis.categorize import Categorizer, kernel_info
from sme2tui.errors import ConfigError

EXPECTED = {
    "Convolution (NHWC, F32) IGEMM #1": "CONV",
    "Convolution (NHWC, F16) DWConv #3": "CONV",
    "Convolution (NHWC, QC8) IGEMM #2": "CONV",
    "Convolution (NHWC, QDU8, F32, QC8W) IGEMM #1": "CONV",
    "Fully Connected (NC, F32) GEMM #15": "GEMM",
    "Fully Connected (NC, QP8, F32, QC4W) GEMM #1": "GEMM",
    "Batch Matrix Multiply (NC, F32) GEMM #2": "GEMM",  # not ELEMENTWISE because of "Multiply"
    "Transpose (ND, X32) #1": "DATA_MOVEMENT",
    "Copy (NC, X32) #4": "DATA_MOVEMENT",
    "Convert (NC, F32, QDU8) #1": "DATA_MOVEMENT",
    "Slice (ND, X32) #1": "DATA_MOVEMENT",
    "Static Reshape #1": "DATA_MOVEMENT",
    "native_call__to_dim_order_copy.out": "DATA_MOVEMENT",
    "native_call__clone_dim_order.out": "DATA_MOVEMENT",
    "native_call_permute_copy.out": "DATA_MOVEMENT",
    "native_call_view_copy.out": "DATA_MOVEMENT",
    "native_call_expand_copy.out": "DATA_MOVEMENT",
    "native_call_squeeze_copy.dims_out": "DATA_MOVEMENT",
    "Add (ND) #1": "ELEMENTWISE",
    "Multiply (ND) #2": "ELEMENTWISE",
    "Clamp (NC) #1": "ELEMENTWISE",
    "HardSwish (NC) #1": "ELEMENTWISE",
    "GELU (NC) #1": "ELEMENTWISE",
    "Invalid Unary Op #3": "ELEMENTWISE",
    "native_call_add.out": "ELEMENTWISE",
    "native_call_gelu.out": "ELEMENTWISE",
    "Max Pooling (NHWC, F32) #1": "OTHER",  # pooling is not elementwise because of "Max"
    "Average Pooling (NHWC, F32) #1": "OTHER",
    "Softmax (NC, F32) #1": "OTHER",
    "Mean (ND) #1": "OTHER",
    "native_call_native_layer_norm.out": "OTHER",
    "native_call_mean.out": "OTHER",
    "native_call__softmax.out": "OTHER",
    "native_call_convolution.out": "CONV",
    "native_call_addmm.out": "GEMM",
    "native_call_bmm.out": "GEMM",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_known_names(name: str) -> None:
    result = Categorizer.load().categorize(name)
    assert (result.category, result.known) == (EXPECTED[name], True)


def test_unknown_names_go_to_other_and_are_flagged() -> None:
    result = Categorizer.load().categorize("Frobnicate (NC, F32) #1")
    assert result.category == "OTHER" and result.known is False


def test_kleidiai_packed_types_are_recognized() -> None:
    assert kernel_info("Fully Connected (NC, PF16) GEMM #1") == ("NC, PF16 GEMM", True)
    assert kernel_info("Fully Connected (NC, QP8, F32, QC4W) GEMM #1")[1] is True
    assert kernel_info("Convolution (NHWC, PQS8) IGEMM")[1] is True
    assert kernel_info("Convolution (NHWC, F32) IGEMM #1") == ("NHWC, F32 IGEMM", False)


def test_user_rules_override(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"category": "GEMM", "match": "^Frobnicate"}]}))
    assert Categorizer.load(rules).categorize("Frobnicate #2").category == "GEMM"


def test_bad_rules_file_is_a_config_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"category": "MATMUL", "match": "x"}]}))
    with pytest.raises(ConfigError, match="each rule needs"):
        Categorizer.load(rules)
