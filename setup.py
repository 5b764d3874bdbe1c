"""Which folders become which import packages; everything else is in pyproject.toml.

pyproject.toml can either find packages or list them, not both, and the dashboard needs a
rename: the folder `dashboard/` installs as the package `tunelab_dashboard`, a name that
cannot collide with the `dashboard/` folder of a user's own repository (the reason the
model package is `tunelab_models`, not `models`). So the list is built here.
"""

from setuptools import find_namespace_packages, setup

# `platform/` is a source root, not a package: a package named `platform` would shadow the
# standard library.
SOURCE_ROOTS = ("platform", "models")
DASHBOARD_FOLDER, DASHBOARD_PACKAGE = "dashboard", "tunelab_dashboard"

packages: list[str] = []
package_dir: dict[str, str] = {}
for root in SOURCE_ROOTS:
    found = find_namespace_packages(where=root)
    packages += found
    package_dir.update({name: f"{root}/{name.replace('.', '/')}" for name in found})
# The app's pages are files Streamlit runs by path, so they must ship beside app.py.
packages += [DASHBOARD_PACKAGE, *(f"{DASHBOARD_PACKAGE}.{name}" for name in find_namespace_packages(where=DASHBOARD_FOLDER))]
package_dir[DASHBOARD_PACKAGE] = DASHBOARD_FOLDER

setup(packages=packages, package_dir=package_dir)
