// 2:4 weights compressed for the sparse tensor cores: the operand layout of PTX `mma.sp` (and
// `mma.sp::ordered_metadata`) with shape m16n8k16 and .f16/.bf16 inputs, sm_80 and later, packed on
// the host so that each thread of a warp loads its registers with one 8-byte and one 4-byte load.
// The CUDA kernel (kernels/cuda/spmm_nm24_f16_sm80.cu) and the host decoder read it as specified here.
//
// What the hardware expects (PTX ISA, "Sparse matrix storage" and "Matrix fragments for sparse
// mma.m16n8k16 with .f16 and .bf16 types", section 9.7.14.6 in PTX ISA 9.x):
//   - A (16 × 16, the weight tile) is 2:4 along K: each chunk of 4 adjacent columns of a row keeps 2
//     values; the compressed tile is 16 × 8.
//   - Lane l = 4g + q (g = groupID = l >> 2, q = threadID_in_group = l % 4) holds two .b32 registers:
//     a0 = the two kept values of chunk q (columns 4q..4q+3) of row g, a1 = the same of row g + 8;
//     the value at the lower column sits in the low half.
//   - Metadata: one .b32 per group of four lanes, taken from the lane the sparsity selector names
//     (the kernel passes selector 0 and every lane loads its group's word). Each chunk takes 4 bits,
//     i0 | i1 << 2, the positions (0..3) of its two kept values, i0 < i1: one of 0b0100, 0b1000,
//     0b1001, 0b1100, 0b1101, 0b1110, the codes mma.sp::ordered_metadata accepts (plain mma.sp
//     accepts them too). Chunk q of row g sits in bits [4q+3 : 4q], chunk q of row g + 8 in bits
//     [16+4q+3 : 16+4q]: row g in the low half-word, row g + 8 in the high one. The PTX ISA gives the
//     m16n8k16 assignment as a figure ("Sparse MMA .m16n8k16 metadata layout for .f16/.bf16 type");
//     its text says one .b32 of sixteen 2-bit indices per group. The half-word split is read from
//     llvm-project's mlir/test/Integration/Dialect/SparseTensor/GPU/CUDA/sparse-mma-2-4-f16.mlir,
//     which builds the m16n8k32 metadata after the ISA's figure (low i16 from the group's row in the
//     first 8 rows, high i16 from the row 8 below, chunks little-endian), narrowed here to k16's four
//     chunks per row; the nibble code matches PyTorch's _sparse_semi_structured_from_dense_cutlass
//     (lower index in the low 2 bits). No code was copied. Until the GPU test
//     Nm24Sm80.MatchesDecodedWeight has passed on a device, this half-word split is the one
//     unverified assumption of the layout.
//
// Layout (rows × cols source, row-major, 2:4 along cols):
//   row_tiles = ceil(rows / 16), k_tiles = ceil(cols / 16); tile (rt, kt) is rows 16rt.., columns 16kt..;
//   padding rows and columns are zero. Tiles are stored row-tile-major: t = rt · k_tiles + kt.
//   values  row_tiles · k_tiles · 128 uint16 (f16 or bf16 bits, round-to-nearest-even from float).
//           Tile t is values[128t .. 128t + 127] in lane order: values[128t + 4l + 0..1] = register a0 of
//           lane l, values[128t + 4l + 2..3] = its a1 (low half first). A warp's tile is one 256-byte read.
//   meta    row_tiles · k_tiles · 8 uint32: meta[8t + g] is the metadata register of group g.
//   A chunk with fewer than 2 non-zeros keeps explicit zeros at its lowest unused positions (padding
//   chunks: positions 0 and 1, code 0b0100), so every code is a valid one.
#pragma once

#include <cstdint>
#include <string>

#include "sparsert/aligned.hpp"

namespace sparsert {

enum class Half16 { kF16, kBF16 };
const char* to_string(Half16 h);

/// Round-to-nearest-even conversions between float and the 16-bit formats, on the host (no CUDA
/// headers): overflow goes to ±inf, NaN stays NaN (quiet), subnormals are kept.
uint16_t float_to_half16(float v, Half16 type);
float half16_to_float(uint16_t bits, Half16 type);

struct Nm24MmaMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  Half16 type = Half16::kF16;
  int64_t row_tiles = 0;
  int64_t k_tiles = 0;
  AlignedVector<uint16_t> values;
  AlignedVector<uint32_t> meta;

  int64_t nbytes() const {
    return static_cast<int64_t>(values.size() * sizeof(uint16_t) + meta.size() * sizeof(uint32_t));
  }
  std::string describe() const;
};

inline constexpr int kNm24TileRows = 16;  // m of m16n8k16
inline constexpr int kNm24TileCols = 16;  // k of m16n8k16

/// Compresses `w` (rows × cols, row-major) into the layout above, values rounded to `type`. A value
/// is kept when it is not exactly zero (NaN is kept). Throws InvalidArgument on negative sizes, a null
/// `w` for a non-empty matrix, or a group of 4 columns holding more than 2 non-zeros; the message names
/// the row, the group and its columns, e.g. "packing nm24 for mma.sp: row 3, group 5 (columns 20..23)
/// has 3 non-zeros (expected at most 2: 2:4 structured sparsity)".
Nm24MmaMatrix nm24_mma_pack(const float* w, int64_t rows, int64_t cols, Half16 type);

/// Decoder: rebuilds the dense matrix (rows × cols, row-major) from values and metadata as the tensor
/// cores read them; exact (each value is the stored 16-bit value widened to float). Throws
/// InvalidArgument naming the tile, group and chunk of a metadata code mma.sp does not accept, or of
/// a non-zero stored in the padding.
void nm24_mma_to_dense(const Nm24MmaMatrix& m, float* out);

}  // namespace sparsert
