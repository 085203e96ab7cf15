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

TcsrView TcsrDevice::view() const {
  TcsrView v;
  v.rows = rows;
  v.cols = cols;
  v.col_tile = col_tile;
  v.col_tiles = col_tiles;
  v.seg_ptr = seg_ptr.data();
  v.col_idx = col_idx.data();
  v.values = values.data();
  return v;
}

TcsrDevice upload(const TcsrMatrix& m) {
  TcsrDevice d;
  d.rows = m.rows;
  d.cols = m.cols;
  d.col_tile = m.col_tile;
  d.col_tiles = m.col_tiles;
  d.seg_ptr = DeviceArray<uint32_t>(m.seg_ptr);
  d.col_idx = DeviceArray<uint16_t>(m.col_idx);
  d.values = DeviceArray<float>(m.values);
  return d;
}

Nm24View Nm24Device::view() const {
  Nm24View v;
  v.rows = rows;
  v.cols = cols;
  v.row_tiles = row_tiles;
  v.k_tiles = k_tiles;
  v.type = type;
  v.values = values.data();
  v.meta = meta.data();
  return v;
}

Nm24Device upload(const Nm24MmaMatrix& m) {
  Nm24Device d;
  d.rows = m.rows;
  d.cols = m.cols;
  d.row_tiles = m.row_tiles;
  d.k_tiles = m.k_tiles;
  d.type = m.type;
  d.values = DeviceArray<uint16_t>(m.values);
  d.meta = DeviceArray<uint32_t>(m.meta);
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
