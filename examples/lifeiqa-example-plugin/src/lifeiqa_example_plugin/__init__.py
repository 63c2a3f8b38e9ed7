"""An example lifeiqa-bench plug-in (see its README): ``models`` registers one model of each
kind a plug-in can add, ``datasets`` a dataset read from a folder and a CSV of scores."""

__version__ = "0.1.0"
