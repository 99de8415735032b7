#!/usr/bin/env bash
# Build piper.train's monotonic-alignment extension inside $VENV (piper-tts 1.8.0's wheel lacks it).
#
# Why: piper.train.vits.monotonic_align imports `.monotonic_align.core.maximum_path_c`, a Cython
# extension, but neither the piper-tts 1.8.0 wheel nor its sdist ships the compiled module or
# its core.pyx source, so `python -m piper.train fit` dies with ImportError at the first
# training step. The .pyx below is this project's own implementation of monotonic alignment
# search (the dynamic programme of Glow-TTS, Kim et al. 2020, §3.2), with the signature
# piper's Python wrapper calls: maximum_path_c(paths int32[b,t_y,t_x], values float32[b,t_y,t_x],
# t_ys int32[b], t_xs int32[b]); `values` is overwritten, `paths` receives the 0/1 alignment.
# It is compiled with the venv's Cython and numpy, next to piper's wrapper.
set -euo pipefail
: "${VENV:?VENV must name the virtualenv}"
PY="$VENV/bin/python"
PKG="$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("piper.train.vits.monotonic_align").origin))')"
BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT

cat > "$BUILD/core.pyx" <<'PYX'
# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Monotonic alignment search (piper-voice-workflow's implementation, GPL-3.0-or-later)."""

cdef float NEG_INF = -1e9


cdef void _align_one(int[:, ::1] path, float[:, ::1] score, int n_frames, int n_tokens) noexcept nogil:
    cdef int y, x, lo, hi
    cdef float stay, advance
    # Forward pass: score[y, x] becomes the best cumulative score of a monotonic path that
    # reaches token x at frame y (each frame maps to one token; tokens advance by 0 or 1).
    for y in range(n_frames):
        lo = n_tokens + y - n_frames
        if lo < 0:
            lo = 0
        hi = y + 1
        if hi > n_tokens:
            hi = n_tokens
        for x in range(lo, hi):
            if x == y:
                stay = NEG_INF
            else:
                stay = score[y - 1, x]
            if x == 0:
                advance = 0.0 if y == 0 else NEG_INF
            else:
                advance = score[y - 1, x - 1]
            score[y, x] = score[y, x] + (stay if stay > advance else advance)
    # Backtrack from the last token at the last frame.
    x = n_tokens - 1
    for y in range(n_frames - 1, -1, -1):
        path[y, x] = 1
        if x != 0 and (x == y or score[y - 1, x] < score[y - 1, x - 1]):
            x = x - 1


def maximum_path_c(int[:, :, ::1] paths, float[:, :, ::1] values, int[::1] t_ys, int[::1] t_xs):
    cdef int b
    cdef int n = paths.shape[0]
    with nogil:
        for b in range(n):
            _align_one(paths[b], values[b], t_ys[b], t_xs[b])
PYX

cat > "$BUILD/setup.py" <<'PY'
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    name="pvw_monotonic_align",
    ext_modules=cythonize([Extension("core", ["core.pyx"], include_dirs=[numpy.get_include()])], quiet=True),
    script_args=["build_ext", "--inplace"],
)
PY
(cd "$BUILD" && "$PY" setup.py >/dev/null)
mkdir -p "$PKG/monotonic_align"
touch "$PKG/monotonic_align/__init__.py"
cp "$BUILD"/core*.so "$PKG/monotonic_align/"
"$PY" -c 'from piper.train.vits.monotonic_align import maximum_path; print("monotonic_align extension OK")'
