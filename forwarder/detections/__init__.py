"""Detections shipped with the forwarder: Sigma rules for WorkMail, converted with pySigma.

The rules (in `detections/` at the top of the repository) are written on WorkMail's own
field names, the Sigma convention for a cloud log source; `pipelines` rewrites them to
the ECS or OCSF fields the forwarder emits, `export` converts them for Splunk and
Elastic, and `evaluate` runs them offline over mapped documents (pySigma's SQLite
backend) so every rule is proven on an attack scenario. Nothing here is imported by
the daemon.
"""
