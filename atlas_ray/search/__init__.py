"""WorkSpecs searched with Ray Tune and ASHA; every trial gathered into a ResultsObject."""

from atlas_ray.search._results import ResultsObject, TrialIdentity, TrialStatus

__all__ = ["ResultsObject", "TrialIdentity", "TrialStatus"]
