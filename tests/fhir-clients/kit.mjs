// Drives Carnet's FHIR endpoint with fhir-kit-client (a published client written by others):
// capability statement, create, search, read. Usage: node kit.mjs BASE TOKEN PATIENT_ID
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { Client } from 'fhir-kit-client';

const [base, token, patient] = process.argv.slice(2);
const client = new Client({ baseUrl: `${base}/fhir`, customHeaders: { Authorization: `Bearer ${token}` } });
const out = {};
try {
  const cap = await client.capabilityStatement();
  out.fhirVersion = cap.fhirVersion;
  const created = await client.create({
    resourceType: 'Observation',
    body: {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
      subject: { reference: `Patient/${patient}` },
      effectiveDateTime: '2025-09-01T08:00:00Z',
      valueQuantity: { value: 68.2, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    },
  });
  out.created = created.id;
  const read = await client.read({ resourceType: 'Observation', id: created.id });
  out.readValue = read.valueQuantity.value;
  const docs = await client.search({ resourceType: 'DocumentReference', searchParams: { patient, _count: 2 } });
  out.docsTotal = docs.total;
  out.docsPage = docs.entry.length;
  const next = await client.nextPage({ bundle: docs });
  out.nextPage = next ? next.entry.length : 0;
  const obs = await client.search({ resourceType: 'Observation', searchParams: { patient, code: 'http://loinc.org|29463-7' } });
  out.observations = obs.total;
  try {
    await client.read({ resourceType: 'DocumentReference', id: 'f'.repeat(64) });
    out.missing = 'found?!';
  } catch (e) {
    out.missing = e.response ? e.response.status : String(e);
    out.missingOutcome = e.response && e.response.data ? e.response.data.resourceType : null;
  }
  console.log(JSON.stringify(out));
} catch (e) {
  console.error('failed:', e.response ? JSON.stringify(e.response.data) : e);
  process.exit(1);
}
