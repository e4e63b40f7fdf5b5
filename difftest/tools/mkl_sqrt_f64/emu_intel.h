/* The Intel-path kernels (run on an AMD CPU by making oneMKL's mkl_serv_intel_cpu_true return 1). */

/* vdsqrt_cout_rare of L9HAynn: the same recipe as rare() but with FMAs (fma() = one rounding). */
static double rare_l9(uint64_t a) {
  double x = d_of(a);
  uint64_t ex = a & 0x7ff0000000000000ULL;
  if (ex == 0x7ff0000000000000ULL) {
    if (a == 0xfff0000000000000ULL) return d_of(0x7ff8000000000000ULL);
    return x + x;
  }
  if (x == 0.0) return x;
  if (a >> 63) return d_of(0x7ff8000000000000ULL);
  if (ex == 0) x = x * d_of(0x4c70000000000000ULL);
  uint64_t d = b_of(x);
  uint32_t e = (uint32_t)((d >> 52) & 0x7ff) - 1023u;
  uint32_t k = (e >> 1) + (ex == 0 ? 0x39bu : 0x3ffu);
  double m = d_of((d & 0x800fffffffffffffULL) | 0x3ff0000000000000ULL);
  m = m * ((e & 1) ? 2.0 : 1.0);
  double scale = d_of((uint64_t)(k & 0x7ff) << 52);
  double y = d_of(SQRT_TAB[(e & 1) * 256 + ((d >> 44) & 0xff)]);
  double h = y * 0.5, g = y * m;
  for (int i = 0; i < 3; i++) {
    double r = fma(-g, h, 0.5);
    double h1 = fma(r, h, h), g1 = fma(g, r, g);
    h = h1; g = g1;
  }
  volatile double t = g * 134217729.0;
  volatile double u = t - g;
  volatile double hi = t - u;
  volatile double lo = g - hi;
  double res = fma(-hi, hi, m);
  res = fma(hi * lo, -2.0, res);
  res = fma(-lo, lo, res);
  res = fma(h, res, g);
  return res * scale;
}

/* mkl_vml_kernel_dSqrt_L9HAynn (AVX2 + FMA): EXHA's recipe with FMAs. */
static double l9ha(uint64_t a) {
  if (exha_special(a)) return rare_l9(a);
  double x = d_of(a);
  uint64_t b = ~a & 0x0010000000000000ULL;
  uint64_t fm = ((a & 0x001fffffe0000000ULL) | (b + 0x07f0000000000000ULL)) >> 29;
  float mf; uint32_t fb = (uint32_t)fm; memcpy(&mf, &fb, 4);
  double y = (double)rsqrtps1(mf);                  /* vrsqrtps (same table as rsqrtps) */
  double sc = d_of(((b - (a & 0x7ff0000000000000ULL)) + 0xbfd0000000000000ULL) >> 1);
  double r = y * sc;
  double rr = r * r;
  double e = fma(-x, rr, 1.0);
  double p = fma(d_of(0x3fd1800032338cbbULL), e, d_of(0x3fd40000b13001d9ULL));
  p = fma(p, e, d_of(0x3fd80000000000f6ULL));
  p = fma(p, e, d_of(0x3fdffffffffffe71ULL));
  double q = x * (r * (e * p));
  return fma(x, r, q);
}

/* mkl_vml_kernel_dSqrt_Z0HAynn (AVX-512): vrsqrt14pd seed, one Goldschmidt step, one FMA correction. */
static double z0ha(uint64_t a) {
  double x = d_of(a);
  /* vfpclasspd 0x5e: +0, -0, +inf, -inf, negative finite (incl. negative subnormal) -> rare helper */
  int isinf_ = (a & 0x7fffffffffffffffULL) == 0x7ff0000000000000ULL;
  int iszero = (a & 0x7fffffffffffffffULL) == 0;
  int isnan_ = (a & 0x7fffffffffffffffULL) > 0x7ff0000000000000ULL;
  if (iszero || isinf_ || (!isnan_ && (a >> 63))) return rare(a);   /* only trivial cases reach it */
  double y = _mm512_cvtsd_f64(_mm512_rsqrt14_pd(_mm512_set1_pd(x)));
  double h = y * 0.5, g = y * x;
  double e = fma(-g, h, 0.5);
  double g1 = fma(e, g, g), h1 = fma(e, h, h);
  if (y > d_of(0x5c90000000000000ULL)) {            /* y > 2^458, i.e. x < ~2^-916: rescaled correction */
    double xs = x * d_of(0x7930000000000000ULL);     /* * 2^916 */
    double gs = g1 * d_of(0x5c90000000000000ULL);    /* * 2^458 */
    double hs = h1 * d_of(0x06b0000000000000ULL);    /* * 2^-916 */
    double ds = fma(-gs, gs, xs);
    return fma(hs, ds, g1);
  }
  double d = fma(-g1, g1, x);
  return fma(d, h1, g1);
}
