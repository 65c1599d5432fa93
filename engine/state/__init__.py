"""The campaign's metric state and its fold: `campaign.CampaignState` and the parts it is made of.

`parts` declares which attributes each part owns (and the recovery format writes them part by part);
`contacts`, `attempts`, `email`, `alert_levels`, `details`, `extremes` are its mixins, one concern each
(the compliance guards are engine.compliance.guards); `entities`, `measures`, `windows`, `config`, `runs`,
`followups` the values it keeps; `gate` the de-duplication and lateness gate in front of it and `fold` the
gate-then-apply loop; `upgrade` reads states of release 1 and before issue #13. Importing this package
loads nothing: the API imports `gate`/`config` without the state (and numpy).
"""
