// Host side of the CUDA backend: the error the check macro throws, device copies of the packed
// layouts, the device count. Compiled by the C++ compiler against the CUDA runtime's headers.
#include <string>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/device_array.hpp"

namespace sparsert::cuda {

void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line) {
  std::string where = file;
  const size_t slash = where.find_last_of('/');
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw CudaError(code, std::string("cuda call ") + call + " at " + where + ":" + std::to_string(line) + ": " +
                            cudaGetErrorString(code) + " (" + cudaGetErrorName(code) + ")");
}

const char* to_string(TcsrVariant v) {
  switch (v) {
    case TcsrVariant::kAuto: return "auto";
    case TcsrVariant::kWarpPerRow: return "warp-per-row";
    case TcsrVariant::kLanesPerBatch: return "lanes-per-batch";
  }
  return "?";
}

TcsrDevice upload(const TcsrMatrix& m) {
  TcsrDevice d{DeviceArray<uint32_t>(m.seg_ptr), DeviceArray<uint16_t>(m.col_idx), DeviceArray<float>(m.values), {}};
  d.view = TcsrView{m.rows, m.cols, m.col_tile, m.col_tiles, d.seg_ptr.data(), d.col_idx.data(), d.values.data()};
  return d;
}

Nm24Device upload(const Nm24MmaMatrix& m) {
  Nm24Device d{DeviceArray<uint16_t>(m.values), DeviceArray<uint32_t>(m.meta), {}};
  d.view = Nm24View{m.rows, m.cols, m.row_tiles, m.k_tiles, m.type, d.values.data(), d.meta.data()};
  return d;
}

int device_count(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky; clear it for whoever calls next
    if (why) *why = std::string(cudaGetErrorString(status)) + " (" + cudaGetErrorName(status) + ")";
    return 0;
  }
  if (count == 0 && why) *why = "cudaGetDeviceCount found no device";
  return count;
}

}  // namespace sparsert::cuda
