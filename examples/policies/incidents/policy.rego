# The incidents
#
# One file per incident of shared/INCIDENTS.md that an HTTP proxy can
# see (incident_NN_*.rego), each with a test built from the requests the
# incident made (incident_NN_*_test.rego). Rule ids are INC-NN (INC-NN-k
# where an incident has several rules). Shared helpers (SQL over HTTP,
# repositories, branches) are in helpers.rego, package
# countersign.incidents; the inventory is in data.yaml.
#
# (A header comment, not a package METADATA annotation: OPA allows one
# per package, and every policy set here is package countersign, so
# sets can be loaded together.)
package countersign
