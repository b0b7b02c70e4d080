"""Build the Cython extensions.

Every ``graphnet/**/*.pyx`` becomes one extension module. Set
``GRAPHNET_NO_EXT=1`` to install without building them (the Makefile does
that for the editable install, then builds in place, incrementally, with
``build_ext --inplace``). Set ``GRAPHNET_DEBUG=1`` for the debug variant: bounds and wraparound checks,
line tracing (for coverage and profilers) and ``cython -a`` HTML annotation
next to each ``.pyx`` (``make debug``).
"""
import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("GRAPHNET_DEBUG", "") not in ("", "0")
ROOT = Path(__file__).parent


def extensions():
    exts = []
    for pyx in sorted(ROOT.glob("graphnet/**/*.pyx")):
        rel = pyx.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        macros = [("GN_DEBUG", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [("GN_DEBUG", "0")]
        exts.append(Extension(
            name, [str(rel)],
            include_dirs=[str(ROOT / "graphnet" / "includes")],
            define_macros=macros,
            extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3", "-march=x86-64-v2", "-fno-strict-aliasing"],
        ))
    return exts


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "linetrace": DEBUG,
    "embedsignature": True,
}

if os.environ.get("GRAPHNET_NO_EXT", "") not in ("", "0"):
    setup(ext_modules=[])
else:
    setup(ext_modules=cythonize(extensions(), compiler_directives=directives,
                                annotate=DEBUG, nthreads=os.cpu_count() or 1))
