#include "kv/attention_kernels.h"

#include "quant/codec.h"

namespace moelab::kv {
namespace kernels_portable {
#include "kv/attention_kernels_impl.h"
}  // namespace kernels_portable

const AttentionKernels& attention_kernels() {
  static const AttentionKernels portable{kernels_portable::scores, kernels_portable::mix};
  static const AttentionKernels avx2{kernels_avx2::scores, kernels_avx2::mix};
  return quant::active_isa() >= quant::Isa::avx2 ? avx2 : portable;
}

}  // namespace moelab::kv
