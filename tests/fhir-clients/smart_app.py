"""A third-party app's standalone launch against Carnet with the SMART on FHIR project's own
Python client library (fhirclient 4.4: discovery from the CapabilityStatement, PKCE S256,
authorisation code, bearer requests, its R4 models). A test tool of Carnet (issue 9, CA-3).

Usage: smart_app.py FHIR_BASE CLIENT_ID REDIRECT_URI SCOPE
Talks with the test on stdio: prints `AUTHORIZE <url>`, reads the callback URL (where the
holder's consent sent the browser) on one line, then prints one JSON line of what it could and
could not do."""
import json
import sys

from fhirclient import client
from fhirclient.models.documentreference import DocumentReference
from fhirclient.models.immunization import Immunization
from fhirclient.models.observation import Observation

base, app_id, redirect, scope = sys.argv[1:5]
smart = client.FHIRClient(
    settings={"app_id": app_id, "api_base": base, "redirect_uri": redirect, "scope": scope}
)
print("AUTHORIZE", smart.authorize_url, flush=True)
callback = sys.stdin.readline().strip()
smart.handle_callback(callback)
out = {"ready": smart.ready, "patient": smart.patient_id}


def refused(action):
    """The HTTP status of a refused action (or "allowed")."""
    try:
        action()
        return "allowed"
    except Exception as e:  # noqa: BLE001 - fhirclient raises its own classes per status
        response = getattr(e, "response", None)
        return response.status_code if response is not None else type(e).__name__


pid = smart.patient_id
obs = Observation(
    {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-21T07:30:00Z",
        "valueQuantity": {
            "value": 64,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
)
created = obs.create(smart.server)
out["created"] = created is not None and created.get("resourceType") == "Observation"
out["read_back"] = Observation.read(created["id"], smart.server).valueQuantity.value
# A transaction Bundle (two measurements, all or nothing), posted at the base as FHIR says.
pulse = lambda at, v: {  # noqa: E731
    "resource": {
        **obs.as_json(),
        "effectiveDateTime": at,
        "valueQuantity": {"value": v, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    },
    "request": {"method": "POST", "url": "Observation"},
}
tx = smart.server.post_json(
    "",
    {"resourceType": "Bundle", "type": "transaction", "entry": [pulse("2026-11-22T07:30:00Z", 66), pulse("2026-11-23T07:30:00Z", 61)]},
).json()
out["transaction"] = [tx.get("type"), [e["response"]["status"] for e in tx.get("entry", [])]]
found = Observation.where(struct={"patient": pid}).perform_resources(smart.server)
out["observations"] = [o.code.coding[0].code for o in found]
docs = DocumentReference.where(struct={"patient": pid, "_count": "100"}).perform_resources(smart.server)
out["document_categories"] = sorted({d.category[0].coding[0].code for d in docs})
out["immunization_search"] = refused(
    lambda: Immunization.where(struct={"patient": pid}).perform(smart.server)
)
out["audit_search"] = refused(lambda: smart.server.request_json(f"AuditEvent?patient={pid}"))
print(json.dumps(out), flush=True)
