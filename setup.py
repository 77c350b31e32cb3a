"""One installed top-level package, `treadle`: the repository's impl/, models/ and checkers/ folders
install as treadle.impl, treadle.models and treadle.checkers (editable and wheel installs alike)."""

from setuptools import find_packages, setup

packages = find_packages(include=["treadle", "treadle.*"])
package_dir = {"treadle": "treadle"}
for folder in ("impl", "models", "checkers"):
    package_dir[f"treadle.{folder}"] = folder
    packages += [f"treadle.{folder}"] + [f"treadle.{folder}.{p}" for p in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
