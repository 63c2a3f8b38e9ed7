"""The CPU arithmetic a run computes with: pinned to one instruction set, and recorded.

torch's own kernels, oneDNN (convolutions), MKL (torch's matmul), OpenBLAS (numpy's and
scipy's linear algebra) and numpy's loops each choose their kernels by the host's instruction set
when they load, and an AVX-512 kernel rounds differently from an AVX2 one. On a 2-core AMD EPYC
without AVX-512 an unpinned run of the CI gate moved the KADID-like probe by 0.13 SRCC on one
split (the synthetic images it generates differ in single pixels, which moves every training
crop seeded by the image's content), and failed the gate. With every library held to AVX2
before it loads, a run on an AVX-512 host gave each of the gate's 60 units bit for bit equal to
that host's (2026-12-06, ``scripts/gate.py`` on commit 768b136; the AVX2 host's values are
``tests/fixtures/avx2-host-gate-units.json``). The last piece was OpenBLAS: numpy and scipy
chose their SkylakeX kernels here and Haswell's there.

So the command line pins the profile :data:`DEFAULT` (``x86-avx2`` on x86-64: every x86 server
of the last decade has AVX2) before anything imports torch or numpy, unless ``LIFEIQA_ARITHMETIC``
names another (``native``: each library's own choice). A variable the user or the host already
set is left as it is, and the record then says ``custom``. Threads change the order of
reductions too, so the record also holds the thread count; a unit is reproducible bit for bit
where its :class:`Arithmetic` is equal (x86 hosts, same versions of the libraries).

Nothing here imports torch or numpy at module level: :func:`pin` must run before they load.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import unknown_name

VARIABLE = "LIFEIQA_ARITHMETIC"

# Each profile: the environment variables that hold every library to it, read when the library
# loads. The names of numpy's features differ between numpy 1.x and 2.x; it ignores the ones
# it does not know.
PROFILES: dict[str, Mapping[str, str]] = {
    "x86-avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",  # torch's own kernels
        "ONEDNN_MAX_CPU_ISA": "AVX2",  # convolutions
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # torch's BLAS
        "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's BLAS and LAPACK
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX "
                                    "AVX512_CLX AVX512_CNL AVX512_KNL AVX512_KNM",  # numpy's loops
    },
    "native": {},
}
# what torch reports under each pinned profile (the record checks it took effect)
TORCH_CAPABILITY = {"x86-avx2": "AVX2"}
PINNED_LIBRARIES = ("torch", "numpy", "scipy")  # loaded before the pin, they keep their kernels
SETTINGS = tuple(sorted({name for profile in PROFILES.values() for name in profile}))


def default_profile() -> str:
    """``x86-avx2`` on x86-64, else ``native`` (the variables mean nothing elsewhere)."""
    return "x86-avx2" if platform.machine().lower() in ("x86_64", "amd64") else "native"


def requested_profile() -> str:
    """The profile ``LIFEIQA_ARITHMETIC`` names, else :func:`default_profile`."""
    name = os.environ.get(VARIABLE, "").strip() or default_profile()
    if name not in PROFILES:
        raise unknown_name(f"arithmetic profile ({VARIABLE})", name, PROFILES)
    return name


def pinned_environment(profile: str | None = None) -> dict[str, str]:
    """The variables a child process needs for ``profile`` (default: the requested one); a
    variable already set here is kept, so a host's own setting wins."""
    name = profile or requested_profile()
    if name not in PROFILES:
        raise unknown_name("arithmetic profile", name, PROFILES)
    return {VARIABLE: name, **{key: os.environ.get(key, value)
                               for key, value in PROFILES[name].items()}}


def pin(profile: str | None = None) -> bool:
    """Set this process's variables for ``profile`` (default: the requested one); True when
    they take effect, False when torch, numpy or scipy had already loaded (then nothing is
    changed, so this process and its children compute alike, and the record says what ran)."""
    additions = pinned_environment(profile)
    if any(name in sys.modules for name in PINNED_LIBRARIES):
        return False
    os.environ.update(additions)
    return True


@dataclass(frozen=True)
class Arithmetic:
    """How a process computed: the profile, what torch reports, each library's setting (None:
    the library's own choice for the host), the thread count and the machine."""

    profile: str  # x86-avx2, native, or custom (a profile's variable changed by the host)
    torch_capability: str
    onednn_max_isa: str | None
    mkl_instructions: str | None
    openblas_coretype: str | None
    numpy_disabled: str | None
    threads: int
    machine: str

    @property
    def label(self) -> str:
        """One line for a table's provenance, e.g. ``x86-avx2 (torch AVX2), 2 threads``."""
        return f"{self.profile} (torch {self.torch_capability}, {self.machine}), " \
               f"{self.threads} thread{'s' if self.threads != 1 else ''}"

    @property
    def kernels(self) -> str:
        """The kernel choice without the thread count: what a feature cache is keyed by."""
        return "|".join(str(v) for v in (self.profile, self.torch_capability, self.onednn_max_isa,
                                          self.mkl_instructions, self.openblas_coretype,
                                          self.numpy_disabled, self.machine))


_FIELDS = {"ONEDNN_MAX_CPU_ISA": "onednn_max_isa", "MKL_ENABLE_INSTRUCTIONS": "mkl_instructions",
           "OPENBLAS_CORETYPE": "openblas_coretype", "NPY_DISABLE_CPU_FEATURES": "numpy_disabled"}


def current() -> Arithmetic:
    """This process's arithmetic, read back from torch and from the variables the libraries
    read when they loaded."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    requested = os.environ.get(VARIABLE, "native")
    settings = {name: os.environ.get(name) for name in SETTINGS}
    wanted = PROFILES.get(requested)
    holds = wanted is not None and all(settings[k] == v for k, v in wanted.items()) and \
        capability == TORCH_CAPABILITY.get(requested, capability) and \
        (requested != "native" or not any(settings.values()))
    return Arithmetic(
        profile=requested if holds else "custom", torch_capability=capability,
        **{field: settings[name] for name, field in _FIELDS.items()},
        threads=torch.get_num_threads(), machine=platform.machine())
