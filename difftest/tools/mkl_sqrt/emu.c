#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>
int main(int argc, char **argv) {
  uint32_t lo = strtoul(argv[1], 0, 0), hi = strtoul(argv[2], 0, 0);
  FILE *f = fopen(argv[3], "rb");
  size_t n = hi - lo; uint32_t *tor = malloc(n * 4); fread(tor, 4, n, f); fclose(f);
  size_t mis = 0, ieee = 0, last = 0;
  for (size_t i = 0; i < n; i += 4) {
    float xs[4]; for (int k = 0; k < 4; k++) { uint32_t b = lo + i + k; memcpy(&xs[k], &b, 4); }
    __m128 x = _mm_loadu_ps(xs), c = _mm_set1_ps(0.5f);
    __m128 y = _mm_rsqrt_ps(x);
    __m128 s = _mm_mul_ps(y, x), h = _mm_mul_ps(y, c);
    __m128 e = _mm_sub_ps(c, _mm_mul_ps(s, h));
    __m128 s1 = _mm_add_ps(_mm_mul_ps(s, e), s), h1 = _mm_add_ps(_mm_mul_ps(e, h), h);
    __m128 r = _mm_add_ps(_mm_mul_ps(_mm_sub_ps(x, _mm_mul_ps(s1, s1)), h1), s1);
    float rs[4]; _mm_storeu_ps(rs, r);
    for (int k = 0; k < 4 && i + k < n; k++) { uint32_t b; memcpy(&b, &rs[k], 4); if (b != tor[i+k]) { if (!mis) printf("first mismatch x=%#x\n", lo+(uint32_t)(i+k)); mis++; last = lo+i+k; }
      float q = sqrtf(xs[k]); uint32_t qb; memcpy(&qb, &q, 4); ieee += (qb != tor[i+k]); }
  }
  printf("last=%#zx ", last); printf("range [%#x,%#x): n=%zu emulation-vs-torch mismatches=%zu, ieee-vs-torch=%zu\n", lo, hi, n, mis, ieee);
}
