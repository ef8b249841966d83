#!/usr/bin/env node
// Validates each line of a JSON Lines file (e.g. AuditEvents) against the
// FHIR R4 JSON schema. usage: node validate-lines.js NODE_MODULES_DIR FILE
// Prints "lines: N passed, N failed".
'use strict';
const path = require('path');
const fs = require('fs');
const [modules, file] = process.argv.slice(2);
const Validator = require(path.join(path.resolve(modules), '@asymmetrik/fhir-json-schema-validator'));
const v = new Validator();
const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
let bad = 0;
for (const l of lines) {
  const errors = v.validate(JSON.parse(l));
  if (errors.length) {
    bad++;
    console.log('not ok:', JSON.stringify(errors.slice(0, 2)));
  }
}
console.log(`lines: ${lines.length - bad} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
