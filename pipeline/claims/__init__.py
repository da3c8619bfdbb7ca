"""Claims: checkable sentences about the topic, with attribution, normalised figures and hedges.

Public API (engineers code against these names): ``extract_pending_claims``, ``select_claims``,
``parse_figures``, ``find_attribution``, ``find_hedges``, and the records ``Claim``, ``Figure``,
``Attribution``. The modules: ``candidates`` (which sentences and headlines are claims),
``documents`` (claim ids and documents), ``pending`` (the stage run by the classify DAG and
``newswatch claims extract``), ``attribution``, ``figures``, ``headline``.
"""

from pipeline.claims.attribution import ATTRIBUTION_KINDS, Attribution, find_attribution, find_hedges
from pipeline.claims.candidates import ClaimCandidate, select_claims
from pipeline.claims.documents import Claim, claim_id
from pipeline.claims.figures import Figure, figures_relation, parse_figures
from pipeline.claims.pending import extract_pending_claims

__all__ = [
    "ATTRIBUTION_KINDS", "Attribution", "Claim", "ClaimCandidate", "Figure", "claim_id",
    "extract_pending_claims", "figures_relation", "find_attribution", "find_hedges", "parse_figures",
    "select_claims",
]
