"""Regenerate tab.h from libtorch_cpu.so and check it against its closed form.

The scalar rare-path helper (vdsqrt_cout_rare) of EXHAynn loads its seed from _vmldSqrtHATab at
0x128b4730 in torch 2.13.0+cu130's libtorch_cpu.so (.rodata: virtual address == file offset); the
L9HA/Z0HA helpers use other copies (0x128af4a0, 0x128ac080) with the same first 4096 bytes.
  python tab.py [path/to/libtorch_cpu.so]
"""
import os, sys, glob, numpy as np
L = sys.argv[1] if len(sys.argv) > 1 else glob.glob(".venv/lib/python3*/site-packages/torch/lib/libtorch_cpu.so")[0]
tabs = []
for addr in (0x128B4730, 0x128AF4A0, 0x128AC080):
    with open(L, "rb") as f:
        f.seek(addr); tabs.append(np.frombuffer(f.read(4096), dtype=np.uint64))
assert all((t == tabs[0]).all() for t in tabs), "the three copies differ"
t = tabs[0]
i = np.arange(256)
formula = np.concatenate([np.round(2**11 / np.sqrt(1 + i / 256)), np.round(2**11 / np.sqrt(2 * (1 + i / 256)))]) / 2**11
print("table == round(2^11/sqrt(m_i))/2^11, m_i = (1+i/256)*{1,2}:", bool((formula.view(np.uint64) == t).all()))
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tab.h"), "w") as o:
    o.write("/* oneMKL _vmldSqrtHATab[0..511]: 1/sqrt seeds for the scalar rare path, [0..255] for m in [1,2), "
            "[256..511] for m in [2,4), index = top 8 mantissa bits */\n")
    o.write("static const uint64_t SQRT_TAB[512] = {\n")
    for k in range(0, 512, 4):
        o.write("  " + ", ".join("0x%016xULL" % int(x) for x in t[k:k + 4]) + ",\n")
    o.write("};\n")
