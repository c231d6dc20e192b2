"""`crm-qualify calibrate`: re-weight the scoring points on the deals that really closed.

dataset (who won, who did not, their facts before the outcome) -> evidence (lift per signal
and profile trait) -> fit (regularised logistic regression turned back into our points) ->
evaluation (current vs proposed rules on the same later people) -> proposal TOML, HTML and
JSON. Nothing here writes to a CRM or to the configuration: a person applies a proposal.
"""
