"""Packaging hook: ship ``lifeiqa-pyiqa.pth`` at the top of site-packages.

Everything else is declared in pyproject.toml. The .pth file runs ``lifeiqa_pyiqa_hook`` at
interpreter start-up so that ``pyiqa.create_metric("lifeiqa")`` works without ``import lifeiqa``
(see that module for why an entry point alone is not enough).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "lifeiqa-pyiqa.pth"
PTH_SOURCE = Path(__file__).parent / PTH


class BuildWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(PTH_SOURCE), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]

    def get_output_mapping(self) -> dict[str, str]:
        mapping = super().get_output_mapping()
        mapping[str(Path(self.build_lib) / PTH)] = PTH
        return mapping


class EditableWithPth(editable_wheel):
    """Editable installs build no site-packages tree; add the .pth to the files they install."""

    def _install_namespaces(self, installation_dir, pth_prefix) -> None:
        super()._install_namespaces(installation_dir, pth_prefix)
        shutil.copy(PTH_SOURCE, Path(installation_dir) / PTH)


setup(cmdclass={"build_py": BuildWithPth, "editable_wheel": EditableWithPth})
