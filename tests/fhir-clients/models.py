"""Parses every FHIR resource given on stdin (a JSON array) with the fhir.resources 6.4 models
(a published Python library; its default package is FHIR R4, 4.0.1). Prints "ok N" or the first
failures and exits 1. A test tool of Carnet."""
import json
import sys

from fhir.resources import get_fhir_model_class

resources = json.load(sys.stdin)
bad = []
for r in resources:
    try:
        get_fhir_model_class(r["resourceType"]).parse_obj(r)
    except Exception as e:  # noqa: BLE001 - report every kind of refusal
        bad.append(f"{r.get('resourceType')}/{r.get('id')}: {str(e)[:300]}")
if bad:
    print("\n".join(bad[:10]))
    sys.exit(1)
print(f"ok {len(resources)}")
