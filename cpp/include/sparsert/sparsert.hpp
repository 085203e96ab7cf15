// Everything public in one include.
#pragma once

#include "sparsert/aligned.hpp"
#include "sparsert/bsr.hpp"
#include "sparsert/csc.hpp"
#include "sparsert/csr.hpp"
#include "sparsert/dense.hpp"
#include "sparsert/error.hpp"
#include "sparsert/format.hpp"
#include "sparsert/graph.hpp"
#include "sparsert/linear.hpp"
#include "sparsert/model.hpp"
#include "sparsert/nm.hpp"
#include "sparsert/tensor.hpp"
#include "sparsert/weight.hpp"
