"""Clientele's default configuration, shipped inside the distribution as package data.

YAML only: presets/, datasets/ (column mappings) and one file per model family. This file only makes the folder
a package that setuptools ships; code never imports it but finds a file through
:func:`features.presets.config_file`, which lets a project's own ``configs/`` folder in the working directory
(or an explicit ``--config``) override these defaults.
"""
