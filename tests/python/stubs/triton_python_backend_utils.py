"""Test-only stand-in for Triton's `triton_python_backend_utils` (the module the Python backend's stub
process provides to model.py), with the part of its API that a model's `execute` uses, as the real
one behaves (python_backend src/resources/triton_python_backend_utils.py and its C++ bindings):
Tensor(name, numpy_array) with name()/as_numpy(); InferenceRequest with inputs() and
requested_output_names(); InferenceResponse(output_tensors, error=None) with output_tensors(),
has_error(), error(); TritonError(msg) with message(); get_input_tensor_by_name(request, name)
returning None when absent; TritonModelException."""

from __future__ import annotations

import numpy as np


class TritonModelException(Exception):
    pass


class TritonError:
    def __init__(self, msg: str, code: int | None = None):
        self._msg = msg
        self._code = code

    def message(self) -> str:
        return self._msg

    def __str__(self) -> str:
        return self._msg


class Tensor:
    def __init__(self, name: str, numpy_array: np.ndarray):
        if not isinstance(numpy_array, np.ndarray):
            raise TritonModelException(f"Tensor '{name}': numpy_array must be a numpy.ndarray")
        if numpy_array.dtype.type == np.str_ or numpy_array.dtype == np.void:
            raise TritonModelException("Tensor dtype used for numpy_array is not supported by Python backend.")
        # The real backend copies the array into shared memory, which needs a contiguous buffer.
        if not numpy_array.flags.c_contiguous:
            raise TritonModelException(f"Tensor '{name}': numpy_array must be C-contiguous")
        self._name = name
        self._array = numpy_array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class InferenceRequest:
    def __init__(self, inputs: list, request_id: str = "", correlation_id: int = 0,
                 requested_output_names: list | None = None):
        self._inputs = inputs
        self._request_id = request_id
        self._correlation_id = correlation_id
        self._requested_output_names = requested_output_names or []

    def inputs(self) -> list:
        return self._inputs

    def request_id(self) -> str:
        return self._request_id

    def correlation_id(self) -> int:
        return self._correlation_id

    def requested_output_names(self) -> list:
        return self._requested_output_names


class InferenceResponse:
    def __init__(self, output_tensors: list, error: TritonError | None = None):
        if type(output_tensors) is not list:
            raise TritonModelException('"output_tensors" must be a list.')
        self._output_tensors = output_tensors
        self._err = error

    def output_tensors(self) -> list:
        return self._output_tensors

    def has_error(self) -> bool:
        return self._err is not None

    def error(self) -> TritonError | None:
        return self._err


def get_input_tensor_by_name(inference_request: InferenceRequest, name: str) -> Tensor | None:
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(inference_response: InferenceResponse, name: str) -> Tensor | None:
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None
