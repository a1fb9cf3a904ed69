"""S2S token judging that the lab's receiving products share.

:mod:`.oracle` is the lab's own verifier of S2S tokens (never :mod:`runbooklib.tokens`, the code
under test); :mod:`.receiver` is the HTTP half a product mounts: the bearer token of a request,
the refusal headers (``x-ms-diagnostics``, ``X-Lab-S2S-Reason``) and the judge-or-refuse flow.
"""
