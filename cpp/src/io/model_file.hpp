// The sparsert model file (.sprt): one self-contained, versioned file holding a Graph with its
// packed weights and constants. Model::save and Model::load (sparsert/model.hpp) are its API.
//
// Layout, all integers little-endian:
//   Header, 32 bytes
//     0   magic     8 bytes   "SPRTMODL"
//     8   version   u32       kModelFileVersion; a reader refuses any other
//     12  reserved  u32       0
//     16  size      u64       total file size in bytes (a shorter file is truncated)
//     24  checksum  u64       FNV-1a 64 over bytes [32, size)
//   Body, a sequence of fields. Primitive fields: u8, u32, i32, i64, f64; str = u32 length + bytes;
//   shape = u32 rank + rank × i64; array = u64 byte count, zero padding up to the next multiple of
//   64 from the start of the file (so a memory-mapped file has every array 64-byte aligned), bytes.
//     u32 value count, then per value: str name, u8 kind (ValueKind: 0 input, 1 constant, 2 node),
//         u8 dtype (DType: 0 f32, 1 i64, 2 bool; any other is refused), shape, and for a constant an
//         array of numel × dtype size bytes (f32 4, i64 8, bool 1 holding 0 or 1)
//     u32 input count, then i32 value index each; u32 output count, then i32 value index each
//     u32 node count, then per node (in execution order; node i computes the i-th value of kind node):
//         str op, str name, u32 input count + i32 value index each,
//         u32 int-attribute count + (str name, u32 n, n × i64) each,
//         u32 float-attribute count + (str name, u32 n, n × f64) each,
//         u32 weight count + a weight record each
//   Weight record: u8 format (Format), i64 rows, i64 cols (each in [0, 2^31)), then the format's own
//   arrays in its in-memory layout, so that a mapped file's weights are used in place:
//     dense: array panels (f32, 16-row panels)                                     — sparsert/dense.hpp
//     csr:   array row_ptr (i64), indices col_idx, array values (f32)               — sparsert/csr.hpp
//     bsr:   i32 block_rows, i32 block_cols, array row_ptr (i64), indices block_col,
//            array values (f32)                                                   — sparsert/bsr.hpp
//     nm:    i32 n, i32 m, array values (f32), array meta (u32)                    — sparsert/nm.hpp
//     csc:   array col_ptr (i64), indices row_idx, array values (f32)               — sparsert/csc.hpp
//   indices = u8 width (16 or 32) + array of u16 or u32 (16-bit where the indexed dimension is ≤ 65536;
//   the other width is accepted and converted, at the cost of a copy).
//   Every count, index, size and array is validated on reading (the format classes' from_parts
//   check their own arrays); any violation throws ModelFileError naming the field.
//
// Version 1 stored dense weights row-major and every index 32-bit; this reader refuses it (save the
// model again).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "sparsert/graph.hpp"

namespace sparsert {

inline constexpr uint32_t kModelFileVersion = 2;

/// Writes `graph` to `path`; throws Error when the file cannot be written.
void write_model_file(const Graph& graph, const std::string& path);
/// Reads a graph written by write_model_file, mapping the file: weights and constants are read in
/// place from the mapping, which lives as long as they do. Throws ModelFileError naming what is wrong.
Graph read_model_file(const std::string& path);
/// Reads a graph from a model file's `size` bytes at `data` (e.g. linked into the binary), with the
/// same checks and messages as read_model_file, which name the source "a model from memory (N
/// bytes)". Copies the bytes once (they are only read during the call and need no alignment).
/// Throws InvalidArgument for null data with size > 0, ModelFileError otherwise.
Graph read_model_buffer(const void* data, size_t size);
/// As read_model_buffer, but the graph reads `data` in place when it is 64-byte aligned (it is copied
/// otherwise): the caller keeps the bytes alive and unchanged while the graph or a model built from
/// it lives.
Graph read_model_buffer_in_place(const void* data, size_t size);

}  // namespace sparsert
