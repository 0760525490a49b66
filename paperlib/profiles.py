"""Run sizes in one place: ``smoke`` < ``cpu`` < ``gpu`` < ``paper`` (defined in
:mod:`paperlib.config`, re-exported here for the old import path)::

    get_profile("cpu")                 # the cpu sizes
    get_profile("cpu", steps=400)      # a notebook's per-profile override
"""
from .config import PROFILES, Profile, get_profile  # noqa: F401
