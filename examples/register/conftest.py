"""Lets pytest run the tutorial's tests without installing the package: when no installed
``register`` system is found, the module beside this file is registered in-process."""

import os
import sys

import treadle

if "register" not in treadle.all_systems():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import register

    treadle.register(register.system)
