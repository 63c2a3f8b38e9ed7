"""Packaging hooks: ship ``lifeiqa-pyiqa.pth`` at the top of site-packages, and the data files
the harness reads at run time inside the package.

Everything else is declared in pyproject.toml. The .pth file runs ``lifeiqa_pyiqa_hook`` at
interpreter start-up so that ``pyiqa.create_metric("lifeiqa")`` works without ``import lifeiqa``
(see that module for why an entry point alone is not enough). The protocols and the published
scores stay in the repository's top-level ``protocols/`` and ``leaderboards/``; a built wheel
carries copies under ``harness/_assets/`` (:mod:`harness.assets` finds either).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "lifeiqa-pyiqa.pth"
PTH_SOURCE = Path(__file__).parent / PTH


ROOT = Path(__file__).parent
# top-level folder -> the files of it the harness reads at run time (MANIFEST.in puts them in
# the sdist, so a wheel built from the sdist has them too)
ASSETS = {"protocols": ("*.yaml", "README.md", "splits/*/*.json"),
          "leaderboards": ("published.yaml", "pyiqa/*.yaml", "pyiqa/*.csv", "pyiqa/README.md")}


def asset_files() -> dict[str, str]:
    """Each shipped data file, from its path in the source tree to its path in the package."""
    return {str(path): str(Path("harness", "_assets", path.relative_to(ROOT)))
            for folder, patterns in ASSETS.items() for pattern in patterns
            for path in sorted((ROOT / folder).glob(pattern))}


class BuildWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(PTH_SOURCE), str(Path(self.build_lib) / PTH))
        for source, target in asset_files().items():
            self.mkpath(str(Path(self.build_lib, target).parent))
            self.copy_file(source, str(Path(self.build_lib, target)))

    def _built(self) -> dict[str, str]:
        return {str(Path(self.build_lib) / PTH): PTH,
                **{str(Path(self.build_lib, t)): s for s, t in asset_files().items()}}

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *self._built()]

    def get_output_mapping(self) -> dict[str, str]:
        mapping = super().get_output_mapping()
        mapping.update(self._built())
        return mapping


class EditableWithPth(editable_wheel):
    """Editable installs build no site-packages tree; add the .pth to the files they install."""

    def _install_namespaces(self, installation_dir, pth_prefix) -> None:
        super()._install_namespaces(installation_dir, pth_prefix)
        shutil.copy(PTH_SOURCE, Path(installation_dir) / PTH)


setup(cmdclass={"build_py": BuildWithPth, "editable_wheel": EditableWithPth})
