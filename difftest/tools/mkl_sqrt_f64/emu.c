/* Emulation of oneMKL 2024.2's f64 sqrt kernels (as linked into libtorch_cpu.so of torch 2.13.0),
 * compared with dumps of torch.sqrt written by dump.py.
 *   gcc -O2 -ffp-contract=off -march=native -o emu emu.c -lm
 *   ./emu KERNEL DIR set...      KERNEL = exha | z0ha | l9ha ; reads DIR/<set>.in, DIR/<set>.out
 * Every op below is one IEEE f64 op in round-to-nearest (no FMA unless written fma). */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
#include "tab.h"

static double d_of(uint64_t b) { double d; memcpy(&d, &b, 8); return d; }
static uint64_t b_of(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

/* f32 rsqrtps of one value, through the real instruction (vendor-specific table). */
static float rsqrtps1(float m) { return _mm_cvtss_f32(_mm_rsqrt_ps(_mm_set1_ps(m))); }

/* Lanes that leave the vector path: high word hi with hi < 0x00100000 (+0, + subnormals),
 * hi >= 0x7fd00000 (x >= 2^1022, +inf, +NaN) and every negative-sign pattern. */
static int exha_special(uint64_t a) {
  int32_t hi = (int32_t)(uint32_t)(a >> 32);
  return (int32_t)((uint32_t)hi + 0x7ff00000u) > (int32_t)0xffbfffffu;
}

/* vdsqrt_cout_rare: scalar path shared by the special lanes (same code in EXHA / L9HA / Z0HA's rare
 * helper is checked separately). */
static double rare(uint64_t a) {
  double x = d_of(a);
  uint64_t ex = a & 0x7ff0000000000000ULL;
  if (ex == 0x7ff0000000000000ULL) {
    if (a == 0xfff0000000000000ULL) return d_of(0x7ff8000000000000ULL);
    return x + x;                                   /* +inf -> +inf, NaN -> quieted NaN, sign kept */
  }
  if (x == 0.0) return x;                           /* +-0 returned as is */
  if (a >> 63) return d_of(0x7ff8000000000000ULL);  /* negative: +qNaN (default NaN with sign clear) */
  if (ex == 0) x = x * d_of(0x4c70000000000000ULL); /* subnormal: * 2^200 */
  uint64_t d = b_of(x);
  uint32_t e = (uint32_t)((d >> 52) & 0x7ff) - 1023u;
  uint32_t k = (e >> 1) + (ex == 0 ? 0x39bu : 0x3ffu);   /* logical shift; only the low 11 bits matter */
  double m = d_of((d & 0x800fffffffffffffULL) | 0x3ff0000000000000ULL);
  m = m * ((e & 1) ? 2.0 : 1.0);
  double scale = d_of((uint64_t)(k & 0x7ff) << 52);
  double y = d_of(SQRT_TAB[(e & 1) * 256 + ((d >> 44) & 0xff)]);
  double h = y * 0.5, g = y * m, r;
  for (int i = 0; i < 3; i++) {
    r = 0.5 - g * h;
    double h1 = r * h + h;                           /* mul then add, separate roundings */
    double g1 = r * g + g;
    h = h1; g = g1;
  }
  volatile double t = 134217729.0 * g;              /* Dekker split of g */
  volatile double u = t - g;
  volatile double hi = t - u;
  volatile double lo = g - hi;
  double res = m - hi * hi;
  double p = hi * lo; res = res - (p + p);
  res = res - lo * lo;
  res = res * h;
  res = res + g;
  return res * scale;
}

/* mkl_vml_kernel_dSqrt_EXHAynn (SSE2; what runs on AMD) */
static double exha(uint64_t a) {
  if (exha_special(a)) return rare(a);
  double x = d_of(a);
  uint64_t b = ~a & 0x0010000000000000ULL;          /* complement of the exponent's lowest bit */
  uint64_t fm = ((a & 0x001fffffe0000000ULL) | (b + 0x07f0000000000000ULL)) >> 29;
  float mf; uint32_t fb = (uint32_t)fm; memcpy(&mf, &fb, 4);   /* x's top 23 mantissa bits, scaled to [1,4) */
  double y = (double)rsqrtps1(mf);
  double sc = d_of(((b - (a & 0x7ff0000000000000ULL)) + 0xbfd0000000000000ULL) >> 1);
  double r = sc * y;                                 /* ~ 1/sqrt(x), exact (power-of-2 scale) */
  double rr = r * r;
  double xh = d_of(a & 0xfffffffff8000000ULL), xl = x - xh;
  double e = (1.0 - xh * rr) - xl * rr;
  double p = e * d_of(0x3fd1800032338cbbULL) + d_of(0x3fd40000b13001d9ULL);
  p = p * e + d_of(0x3fd80000000000f6ULL);
  p = p * e + d_of(0x3fdffffffffffe71ULL);
  p = p * e;
  double q = (p * r) * x;
  return xh * r + (xl * r + q);
}

#include "emu_intel.h"

int main(int argc, char **argv) {
  const char *k = argv[1];
  double (*f)(uint64_t) = !strcmp(k, "exha") ? exha : !strcmp(k, "z0ha") ? z0ha : !strcmp(k, "l9ha") ? l9ha : 0;
  if (!f) { fprintf(stderr, "kernel?\n"); return 2; }
  for (int s = 3; s < argc; s++) {
    char p[4096]; snprintf(p, sizeof p, "%s/%s.in", argv[2], argv[s]);
    FILE *fi = fopen(p, "rb"); snprintf(p, sizeof p, "%s/%s.out", argv[2], argv[s]);
    FILE *fo = fopen(p, "rb");
    if (!fi || !fo) { fprintf(stderr, "missing %s\n", p); return 2; }
    fseek(fi, 0, SEEK_END); size_t n = ftell(fi) / 8; rewind(fi);
    uint64_t *in = malloc(n * 8), *out = malloc(n * 8);
    if (fread(in, 8, n, fi) != n || fread(out, 8, n, fo) != n) return 2;
    size_t mis = 0, ieee = 0;
    for (size_t i = 0; i < n; i++) {
      uint64_t got = b_of(f(in[i]));
      if (got != out[i]) { if (mis < 5) printf("  %s mismatch x=%#018llx torch=%#018llx emu=%#018llx\n", argv[s],
          (unsigned long long)in[i], (unsigned long long)out[i], (unsigned long long)got); mis++; }
      ieee += b_of(sqrt(d_of(in[i]))) != out[i];
    }
    printf("%s %s: n=%zu emulation-vs-torch mismatches=%zu (ieee-vs-torch bit differences=%zu)\n", k, argv[s], n, mis, ieee);
    free(in); free(out); fclose(fi); fclose(fo);
  }
  return 0;
}
