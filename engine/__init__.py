"""marshrut engine: individual professional development routes for teachers.

    region = load_bundle("datasets/samples/tomsk-school-44")
    files = plan_region(region, Params(time_limit_s=20))
    write_plan(files, "out/tomsk")
"""

from .bundle import load_bundle, load_upload, validate_bundle
from .params import AssignmentRef, Params, load_params, params_from_dict
from .pipeline import plan_region
from .plan import PlanFiles, write_plan
from .problems import BundleError, InputError, Problem
from .region import RegionData
from .solver import Progress, Result, solve

__all__ = [
    "AssignmentRef", "BundleError", "InputError", "Params", "PlanFiles", "Problem", "Progress", "RegionData",
    "Result", "load_bundle", "load_params", "load_upload", "params_from_dict", "plan_region", "solve",
    "validate_bundle", "write_plan",
]
