// Bodies of kv/attention_kernels.h, included once per ISA inside that ISA's
// namespace. Plain loops whose innermost dimension is contiguous and free of
// reductions, so the compiler vectorizes them for whatever ISA the file is
// built for; tile widths are compile-time so accumulators stay in registers.
// (No #pragma once: each including file instantiates its own copy.)

namespace detail {

// Two query rows at a time share each load of the key tile.
inline void scores_rows(const float* q, int64_t m, int64_t dim, const float* kt, float* s, int64_t lds) {
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) {
    float a0[kKeyTile] = {}, a1[kKeyTile] = {};
    const float* q0 = q + i * dim;
    const float* q1 = q0 + dim;
    for (int64_t d = 0; d < dim; ++d) {
      const float x0 = q0[d], x1 = q1[d];
      const float* k = kt + d * kKeyTile;
      for (int64_t j = 0; j < kKeyTile; ++j) {
        a0[j] += x0 * k[j];
        a1[j] += x1 * k[j];
      }
    }
    for (int64_t j = 0; j < kKeyTile; ++j) {
      s[i * lds + j] = a0[j];
      s[(i + 1) * lds + j] = a1[j];
    }
  }
  for (; i < m; ++i) {
    float a0[kKeyTile] = {};
    const float* q0 = q + i * dim;
    for (int64_t d = 0; d < dim; ++d) {
      const float x0 = q0[d];
      const float* k = kt + d * kKeyTile;
      for (int64_t j = 0; j < kKeyTile; ++j) a0[j] += x0 * k[j];
    }
    for (int64_t j = 0; j < kKeyTile; ++j) s[i * lds + j] = a0[j];
  }
}

template <int64_t kHd>
void mix_rows(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, float* acc) {
  for (int64_t i = 0; i < m; ++i) {
    float a[kHd];
    float* out = acc + i * kHd;
    for (int64_t d = 0; d < kHd; ++d) a[d] = out[d];
    const float* pi = p + i * ldp;
    for (int64_t j = 0; j < len[i]; ++j) {
      const float w = pi[j];
      const float* vj = v + j * kHd;
      for (int64_t d = 0; d < kHd; ++d) a[d] += w * vj[d];
    }
    for (int64_t d = 0; d < kHd; ++d) out[d] = a[d];
  }
}

inline void mix_rows_any(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, int64_t hd,
                         float* acc) {
  for (int64_t i = 0; i < m; ++i) {
    float* out = acc + i * hd;
    const float* pi = p + i * ldp;
    for (int64_t j = 0; j < len[i]; ++j) {
      const float w = pi[j];
      const float* vj = v + j * hd;
      for (int64_t d = 0; d < hd; ++d) out[d] += w * vj[d];
    }
  }
}

}  // namespace detail

void scores(const float* q, int64_t m, int64_t dim, const float* kt, float* s, int64_t lds) {
  detail::scores_rows(q, m, dim, kt, s, lds);
}

void mix(const float* p, int64_t ldp, int64_t m, const int64_t* len, const float* v, int64_t hd, float* acc) {
  if (hd == 64) detail::mix_rows<64>(p, ldp, m, len, v, acc);
  else if (hd == 128) detail::mix_rows<128>(p, ldp, m, len, v, acc);
  else detail::mix_rows_any(p, ldp, m, len, v, hd, acc);
}
