"""The one device picker and precision rule (curate, eval and train plans)."""

from __future__ import annotations

import pytest

from biomedica.models import ModelLoadError, check_device, pick_device, resolve_precision

torch = pytest.importorskip("torch")


def test_auto_is_the_gpu_when_torch_sees_one():
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device() == pick_device("auto")


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1", "mps", " cpu "])
def test_named_devices_pass_through_without_a_gpu_check(name):
    assert pick_device(name) == name.strip()  # a plan for a GPU node may be built on a login node


@pytest.mark.parametrize("name", ["gpu", "cuda1", "cuda:", "CPU", ""])
def test_malformed_devices_are_one_line_errors(name):
    with pytest.raises(ModelLoadError, match="use auto, cpu, cuda, cuda:N or mps") as caught:
        pick_device(name)
    assert "\n" not in str(caught.value)


def test_check_device_refuses_a_gpu_that_is_not_there():
    check_device("cpu")
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ModelLoadError, match=f"device {missing}: torch sees {torch.cuda.device_count()} CUDA GPU"):
        check_device(missing)


def test_precision_is_mixed_on_cuda_only():
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "fp32"  # autocast applies on CUDA only
    assert resolve_precision("fp16", "cuda:0") == "fp16"
    assert resolve_precision("fp32", "cuda") == "fp32"
    if torch.cuda.is_available():
        assert resolve_precision("auto", "cuda") == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    with pytest.raises(ModelLoadError, match="precision 'int8': use auto, fp32, bf16, fp16"):
        resolve_precision("int8", "cpu")
