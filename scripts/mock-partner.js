#!/usr/bin/env node
// A mock partner FHIR server (DSTU2 or STU3) for the ngx_fhir demo and tests.
// Node's standard library only. It serves the sample patients under
// t/data/corpus/<version>/ and t/data/extra/<version>/ the way the Teams
// Patients app expects a partner to (see docs/demo.md):
//   GET  /fhir/metadata                  unauthenticated, SMART oauth-uris
//   POST /token                          OAuth2 client credentials
//   GET  /fhir/<Type>/<id>               read
//   GET  /fhir/<Type>?...                search (_count, _sort, total, next)
//   POST /fhir/Patient/_search           form-encoded search
//   POST /fhir                           batch Bundle -> batch-response
// Data requests need "Authorization: Bearer <token>" (a token from /token,
// or the --static-token).  Ids starting with "_fault-" trigger faults used
// by the tests (stall, html, broken JSON, gzip, 500).
//
// usage: mock-partner.js --name N --version dstu2|stu3 --port P
//        [--host 127.0.0.1] [--data DIR]... [--auth basic|post]
//        [--client-id ID] [--client-secret S] [--static-token T]
//        [--token-ttl SECONDS] [--jwt-public-key PEM]
// --auth basic|post|private_key_jwt: the client authentication it enforces.
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const zlib = require('zlib');

function parseArgs(argv) {
  const o = { data: [], host: '127.0.0.1', auth: 'basic', tokenTtl: 3600 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    switch (k) {
      case '--name': o.name = v; i++; break;
      case '--version': o.version = v; i++; break;
      case '--port': o.port = Number(v); i++; break;
      case '--host': o.host = v; i++; break;
      case '--data': o.data.push(v); i++; break;
      case '--auth': o.auth = v; i++; break;
      case '--client-id': o.clientId = v; i++; break;
      case '--client-secret': o.clientSecret = v; i++; break;
      case '--static-token': o.staticToken = v; i++; break;
      case '--token-ttl': o.tokenTtl = Number(v); i++; break;
      case '--jwt-public-key': o.jwtPublicKey = v; i++; break;
      default: throw new Error('unknown option ' + k);
    }
  }
  if (!o.name || !['dstu2', 'stu3'].includes(o.version) || !o.port) {
    throw new Error('usage: mock-partner.js --name N --version dstu2|stu3 --port P [--data DIR]...');
  }
  o.clientId = o.clientId || o.name + '-gateway';
  o.clientSecret = o.clientSecret || o.name + '-secret';
  return o;
}

const opt = parseArgs(process.argv);
const DSTU2 = opt.version === 'dstu2';
const MIME = DSTU2 ? 'application/json+fhir; charset=utf-8' : 'application/fhir+json; charset=utf-8';
const BASE_PATH = '/fhir';
const base = () => `http://${opt.host}:${opt.port}${BASE_PATH}`;

// ---- data ----

const store = new Map(); // type -> Map(id -> resource)

function put(res) {
  if (!res || !res.resourceType || !res.id) return;
  if (!store.has(res.resourceType)) store.set(res.resourceType, new Map());
  store.get(res.resourceType).set(res.id, res);
}

function rewriteRefs(node, map) {
  if (Array.isArray(node)) { node.forEach((n) => rewriteRefs(n, map)); return; }
  if (node && typeof node === 'object') {
    for (const k of Object.keys(node)) {
      if (k === 'reference' && typeof node[k] === 'string' && map.has(node[k])) node[k] = map.get(node[k]);
      else rewriteRefs(node[k], map);
    }
  }
}

// Decimals are data in FHIR ("72.0" is not "72"), and JSON.parse would
// lose their lexical form: each decimal member value is carried as a marked
// string and written back as the exact original number.
const NUM = '__num__';
const numIn = /("[A-Za-z_][A-Za-z0-9_]*"\s*:\s*)(-?\d+\.\d+(?:[eE][+-]?\d+)?)(?=\s*[,}\]])/g;
const numOut = new RegExp(`"${NUM}(-?[0-9.eE+-]+)"`, 'g');

function loadFile(file) {
  const text = fs.readFileSync(file, 'utf8').replace(numIn, `$1"${NUM}$2"`);
  const doc = JSON.parse(text);
  if (doc.resourceType !== 'Bundle') { put(doc); return; }
  const map = new Map();
  for (const e of doc.entry || []) {
    const r = e.resource;
    if (r && r.resourceType && r.id && e.fullUrl) map.set(e.fullUrl, `${r.resourceType}/${r.id}`);
  }
  for (const e of doc.entry || []) {
    if (!e.resource) continue;
    rewriteRefs(e.resource, map);
    put(e.resource);
  }
}

for (const dir of opt.data) {
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).sort()) {
    if (f.endsWith('.json')) loadFile(path.join(dir, f));
  }
}

// ---- auth ----

const tokens = new Map(); // token -> expiry ms
let tokenRequests = 0;
const tokenRequestsBy = {}; // client_id -> count
let metadataRequests = 0;
const gated = []; // the ends of gated Bundles, sent by _fault-release
const usedJti = new Set();

function validToken(req) {
  const h = req.headers.authorization || '';
  const m = /^Bearer (.+)$/.exec(h);
  if (!m) return false;
  if (opt.staticToken && m[1] === opt.staticToken) return true;
  const exp = tokens.get(m[1]);
  return exp !== undefined && exp > Date.now();
}

// SMART Backend Services: a client assertion signed RS384 / ES384
function checkAssertion(form) {
  if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return null;
  const parts = (form.get('client_assertion') || '').split('.');
  if (parts.length !== 3 || !opt.jwtPublicKey) return null;
  const header = JSON.parse(Buffer.from(parts[0], 'base64url'));
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  const key = crypto.createPublicKey(fs.readFileSync(opt.jwtPublicKey));
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  let ok = false;
  if (header.alg === 'RS384') ok = crypto.verify('sha384', data, key, sig);
  else if (header.alg === 'ES384') ok = crypto.verify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  const now = Date.now() / 1000;
  if (!ok || claims.iss !== claims.sub || claims.aud !== `http://${opt.host}:${opt.port}/token`
      || !(claims.exp > now && claims.exp < now + 600) || !claims.jti || usedJti.has(claims.jti)) {
    return null;
  }
  usedJti.add(claims.jti);
  return claims.iss;
}

function tokenEndpoint(req, body, res) {
  tokenRequests++;
  const form = new URLSearchParams(body);
  let id, secret;
  const m = /^Basic (.+)$/.exec(req.headers.authorization || '');
  if (m) [id, secret] = Buffer.from(m[1], 'base64').toString().split(':');
  else { id = form.get('client_id'); secret = form.get('client_secret'); }
  tokenRequestsBy[id] = (tokenRequestsBy[id] || 0) + 1;
  // faults, by client id, for the tests
  if (id === 'fault-stall') return; // never answers
  if (id === 'fault-500') return sendJson(res, 500, { error: 'server_error' }, 'application/json');
  if (id === 'fault-malformed') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end('{"access_token": ');
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return sendJson(res, 400, { error: 'unsupported_grant_type' }, 'application/json');
  }
  // each partner enforces its own style of client authentication
  let ok;
  if (opt.auth === 'private_key_jwt') ok = checkAssertion(form) === opt.clientId;
  else if (opt.auth === 'basic') ok = !!m && id === opt.clientId && secret === opt.clientSecret;
  else ok = !m && id === opt.clientId && secret === opt.clientSecret;
  if (!ok) {
    return sendJson(res, 401, { error: 'invalid_client' }, 'application/json');
  }
  const t = crypto.randomBytes(24).toString('hex');
  tokens.set(t, Date.now() + opt.tokenTtl * 1000);
  return sendJson(res, 200, { access_token: t, token_type: 'Bearer', expires_in: opt.tokenTtl },
    'application/json');
}

// ---- FHIR helpers ----

function outcome(severity, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics: text }] };
}

function sendJson(res, status, obj, type) {
  const body = JSON.stringify(obj).replace(numOut, '$1');
  res.writeHead(status, { 'Content-Type': type || MIME, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function metadata() {
  const types = [...store.keys()].sort();
  const security = {
    extension: [{
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [{ url: 'token', valueUri: `http://${opt.host}:${opt.port}/token` }],
    }],
    service: [{ coding: [{ system: DSTU2 ? 'http://hl7.org/fhir/restful-security-service' : 'http://hl7.org/fhir/restful-security-service', code: 'SMART-on-FHIR' }] }],
  };
  const resource = types.map((t) => ({
    type: t,
    interaction: [{ code: 'read' }, { code: 'search-type' }],
  }));
  const doc = {
    resourceType: DSTU2 ? 'Conformance' : 'CapabilityStatement',
    status: 'active',
    date: '2020-01-01',
    publisher: `${opt.name} (ngx_fhir demo partner)`,
    kind: 'instance',
    software: { name: `ngx_fhir mock partner ${opt.name}` },
    implementation: { description: `${opt.name} demo`, url: base() },
    fhirVersion: DSTU2 ? '1.0.2' : '3.0.1',
    acceptUnknown: DSTU2 ? 'no' : 'no',
    format: DSTU2 ? ['application/json+fhir'] : ['application/fhir+json'],
    rest: [{ mode: 'server', security, resource, interaction: [{ code: 'batch' }] }],
  };
  return doc;
}

function refOf(r) {
  const ref = (x) => (x && x.reference) || '';
  return ref(r.subject) || ref(r.patient) || ref(r.beneficiary) || ref(r.subscriber) || '';
}

function dateOf(r) {
  return r.effectiveDateTime || (r.effectivePeriod && r.effectivePeriod.start) || r.issued
    || (r.period && r.period.start) || r.dateRecorded || r.assertedDate || r.onsetDateTime
    || r.dateWritten || r.authoredOn || r.recordedDate || r.effectiveDate || '';
}

function nameParts(r, which) {
  const out = [];
  for (const n of r.name || []) {
    const add = (v) => { if (Array.isArray(v)) out.push(...v); else if (v) out.push(v); };
    if (which === 'family' || which === 'name') add(n.family);
    if (which === 'given' || which === 'name') add(n.given);
    if (which === 'name' && n.text) out.push(n.text);
  }
  return out.map((s) => String(s).toLowerCase());
}

function codes(cc) {
  const list = Array.isArray(cc) ? cc : cc ? [cc] : [];
  const out = [];
  for (const c of list) for (const cd of c.coding || []) out.push(cd.code, `${cd.system}|${cd.code}`);
  return out;
}

function matches(type, r, name, value) {
  const [param, modifier] = name.split(':');
  const v = value.toLowerCase();
  switch (param) {
    case '_id': case 'id': return r.id === value;
    case 'patient': case 'subject': case 'beneficiary': {
      const want = value.includes('/') ? value : `Patient/${value}`;
      return refOf(r) === want;
    }
    case 'family': case 'given': case 'name': {
      const parts = nameParts(r, param);
      if (modifier === 'exact') return parts.includes(v);
      return parts.some((p) => p.includes(v)); // "contains", as the app expects
    }
    case 'birthdate': return (r.birthDate || '') === value;
    case 'gender': return (r.gender || '') === value;
    case 'identifier': {
      const [sys, val] = value.includes('|') ? value.split('|') : [null, value];
      return (r.identifier || []).some((i) => i.value === val && (!sys || i.system === sys));
    }
    case 'category': return codes(r.category).includes(value);
    case 'code': return codes(r.code).includes(value);
    case 'status': return r.status === value;
    default: return true; // unknown parameters are ignored, as servers do
  }
}

function search(type, params, req) {
  const all = store.has(type) ? [...store.get(type).values()] : [];
  let count = 50, offset = 0, sortDesc = null;
  const filters = [];
  for (const [k, v] of params) {
    if (k === '_count') count = Math.max(0, Math.min(1000, Number(v) || 0));
    else if (k === '_offset') offset = Math.max(0, Number(v) || 0);
    // each version's own sort syntax only, as a strict server would
    else if (k === '_sort' && DSTU2 && v.startsWith('-')) return { error: `DSTU2 sorts with _sort:desc=, not _sort=${v}` };
    else if (k === '_sort') sortDesc = v.startsWith('-');
    else if ((k === '_sort:desc' || k === '_sort:asc') && !DSTU2) return { error: `STU3 sorts with _sort=-x, not ${k}` };
    else if (k === '_sort:desc') sortDesc = true;
    else if (k === '_sort:asc') sortDesc = false;
    else if (k === '_format' || k === '_getpagesoffset') continue;
    else filters.push([k, v]);
  }
  let hits = all.filter((r) => filters.every(([k, v]) => matches(type, r, k, v)));
  if (sortDesc !== null) {
    hits.sort((a, b) => (dateOf(a) < dateOf(b) ? -1 : dateOf(a) > dateOf(b) ? 1 : 0));
    if (sortDesc) hits.reverse();
  }
  const page = hits.slice(offset, offset + count);
  const selfParams = new URLSearchParams(params);
  const bundle = {
    resourceType: 'Bundle',
    id: crypto.randomBytes(8).toString('hex'),
    type: 'searchset',
    total: hits.length,
    link: [{ relation: 'self', url: `${base()}/${type}?${selfParams}` }],
    entry: page.map((r) => ({ fullUrl: `${base()}/${type}/${r.id}`, resource: r, search: { mode: 'match' } })),
  };
  if (offset + count < hits.length) {
    const next = new URLSearchParams(params);
    next.set('_offset', String(offset + count));
    next.set('_count', String(count));
    bundle.link.push({ relation: 'next', url: `${base()}/${type}?${next}` });
  }
  return bundle;
}

// ---- faults used by the tests ----

function fault(id, res) {
  switch (id) {
    case '_fault-stall': return; // never answers
    case '_fault-html':
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end('<html><body>maintenance</body></html>');
    case '_fault-busy':
      // rate limited, as API gateways in front of FHIR servers answer
      res.writeHead(429, { 'Content-Type': 'text/plain', 'Retry-After': '7' });
      return res.end('rate limit exceeded');
    case '_fault-down':
      res.writeHead(503, { 'Content-Type': 'text/html', 'Retry-After': '30' });
      return res.end('<html><body>down for maintenance</body></html>');
    case '_fault-broken': {
      const body = '{"resourceType":"Patient","id":"x","name":[{"family":"Broken';
      res.writeHead(200, { 'Content-Type': MIME });
      return res.end(body);
    }
    case '_fault-gzip': {
      const body = zlib.gzipSync(JSON.stringify({ resourceType: 'Patient', id: 'gz' }));
      res.writeHead(200, { 'Content-Type': MIME, 'Content-Encoding': 'gzip' });
      return res.end(body);
    }
    case '_fault-stallbody':
      // the start of a Bundle, then silence: no entry is ever complete
      res.writeHead(200, { 'Content-Type': MIME });
      return res.write('{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"resource":{"resourceType":"Pat');
    case '_fault-utf8': {
      res.writeHead(200, { 'Content-Type': MIME });
      return res.end(Buffer.concat([Buffer.from('{"resourceType":"Patient","id":"u","name":[{"family":"'),
        Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]));
    }
    case '_fault-dupkey':
      res.writeHead(200, { 'Content-Type': MIME });
      return res.end('{"resourceType":"Patient","id":"a","id":"b"}');
    case '_fault-deep':
      res.writeHead(200, { 'Content-Type': MIME });
      return res.end('{"resourceType":"Patient","extension":' + '['.repeat(500) + ']'.repeat(500) + '}');
    case '_fault-bignum':
      res.writeHead(200, { 'Content-Type': MIME });
      return res.end('{"resourceType":"Observation","status":"final","valueQuantity":{"value":'
        + '9'.repeat(5000) + '}}');
    case '_fault-reset':
      // a Bundle that starts, then the connection is reset
      res.writeHead(200, { 'Content-Type': MIME });
      res.write('{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"a"}},');
      return setTimeout(() => res.socket.resetAndDestroy ? res.socket.resetAndDestroy() : res.destroy(), 50);
    case '_fault-slowbundle': {
      // a Bundle of 100 Patients, one every 20 ms: the caller can leave mid-stream
      res.writeHead(200, { 'Content-Type': MIME });
      res.write('{"resourceType":"Bundle","type":"searchset","total":100,"entry":[');
      let i = 0;
      const tick = () => {
        if (res.destroyed || res.writableEnded) return;
        if (i === 100) return res.end(']}');
        res.write((i ? ',' : '') + JSON.stringify({ resource: { resourceType: 'Patient', id: `slow-${i}`,
          name: [{ family: 'Slow', given: [`N${i}`] }] } }));
        i++;
        setTimeout(tick, 20);
      };
      return tick();
    }
    case '_fault-gatedbundle': {
      // two Patients, then nothing until _fault-release is read: whatever
      // the caller has before that, the gateway streamed (t/05-streaming.t)
      const entry = (i) => JSON.stringify({ resource: { resourceType: 'Patient', id: `gate-${i}`,
        name: [{ family: 'Gated', given: [`N${i}`] }] } });
      res.writeHead(200, { 'Content-Type': MIME });
      res.write('{"resourceType":"Bundle","type":"searchset","total":4,"entry":[' + entry(0) + ',' + entry(1));
      gated.push(() => { if (!res.destroyed) res.end(',' + entry(2) + ',' + entry(3) + ']}'); });
      return;
    }
    case '_fault-gatedend': {
      // a whole Bundle, but the response's end (the last chunk) only once
      // _fault-release is read: the gateway sends the document's last bytes
      // with the end of the response, in one write (t/05-streaming.t)
      res.writeHead(200, { 'Content-Type': MIME });
      // (100 entries, about 9 KB: more than small proxy buffers hold)
      res.write(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: 100,
        entry: [...Array(100).keys()].map((i) => ({ resource: { resourceType: 'Patient',
          id: `end-${i}`, name: [{ family: 'Ended', given: [`N${i}`] }] } })) }));
      gated.push(() => { if (!res.destroyed) res.end(); });
      return;
    }
    case '_fault-release': {
      const n = gated.length;
      gated.splice(0).forEach((f) => f());
      return sendJson(res, 200, { resourceType: 'Patient', id: '_fault-release', active: n > 0 });
    }
    case '_fault-500':
      return sendJson(res, 500, outcome('error', 'exception', 'partner failure'));
    case '_fault-truncated': {
      // a Bundle whose second entry never ends: bytes already went out
      res.writeHead(200, { 'Content-Type': MIME });
      res.write('{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"a"}},');
      res.write('{"resource":{"resourceType":"Patient","id":"b","name":[{"family":"Tr');
      return setTimeout(() => res.destroy(), 100);
    }
    default:
      return sendJson(res, 404, outcome('error', 'not-found', 'no such fault'));
  }
}

// ---- routing ----

function handleFhir(method, rel, query, body, req) {
  // returns [status, object]
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0) {
    if (method !== 'POST') return [405, outcome('error', 'not-supported', 'POST a batch Bundle')];
    const ct = (req.headers['content-type'] || '').split(';')[0].trim();
    if (ct !== MIME.split(';')[0]) {
      return [415, outcome('error', 'not-supported', `a ${opt.version} batch is ${MIME.split(';')[0]}, not ${ct}`)];
    }
    let doc;
    try { doc = JSON.parse(body); } catch (e) { return [400, outcome('error', 'invalid', 'bad JSON')]; }
    if (doc.resourceType !== 'Bundle' || doc.type !== 'batch') {
      return [400, outcome('error', 'invalid', 'expected a batch Bundle')];
    }
    const entry = (doc.entry || []).map((e) => {
      const url = (e.request && e.request.url) || '';
      const [p, q] = url.split('?');
      const [st, obj] = handleFhir((e.request && e.request.method) || 'GET', p, new URLSearchParams(q || ''), '', req);
      const out = { response: { status: `${st} ${st === 200 ? 'OK' : 'Error'}` } };
      if (obj) out.resource = obj;
      return out;
    });
    return [200, { resourceType: 'Bundle', id: crypto.randomBytes(8).toString('hex'), type: 'batch-response', entry }];
  }
  const type = parts[0];
  if (!/^[A-Z][A-Za-z]+$/.test(type)) return [404, outcome('error', 'not-found', 'unknown resource type')];
  const searched = (b) => (b.error ? [400, outcome('error', 'invalid', b.error)] : [200, b]);
  if (parts.length === 1 && method === 'GET') return searched(search(type, [...query], req));
  if (parts.length === 2 && parts[1] === '_search' && method === 'POST') {
    const form = new URLSearchParams(body);
    return searched(search(type, [...query, ...form], req));
  }
  if (parts.length === 2 && method === 'GET') {
    const r = store.has(type) && store.get(type).get(parts[1]);
    if (!r) return [404, outcome('error', 'not-found', `${type}/${parts[1]} is not known`)];
    return [200, r];
  }
  return [400, outcome('error', 'not-supported', 'unsupported interaction')];
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/token' && req.method === 'POST') return tokenEndpoint(req, body, res);
    if (url.pathname === '/_stats') {
      return sendJson(res, 200, { tokenRequests, tokenRequestsBy, metadataRequests, name: opt.name,
        version: opt.version },
        'application/json');
    }
    if (url.pathname === '/_revoke' && req.method === 'POST') {
      tokens.clear(); // every issued token is now refused (401)
      return sendJson(res, 200, { revoked: true }, 'application/json');
    }
    // metadata faults, by base path, for the tests
    let path = url.pathname;
    const mf = /^\/fault-(missing|malformed|r5|slow|badtoken)(\/.*)$/.exec(path);
    if (mf) path = mf[2];
    if (!path.startsWith(BASE_PATH)) return sendJson(res, 404, outcome('error', 'not-found', 'not found'));
    const rel = path.slice(BASE_PATH.length);
    if (rel === '/metadata' && req.method === 'GET') {
      metadataRequests++;
      if (mf && mf[1] === 'missing') return sendJson(res, 404, outcome('error', 'not-found', 'no metadata'));
      if (mf && mf[1] === 'malformed') { res.writeHead(200, { 'Content-Type': MIME }); return res.end('{"resourceType":'); }
      if (mf && mf[1] === 'r5') return sendJson(res, 200, Object.assign(metadata(), { fhirVersion: '5.0.0' }));
      if (mf && mf[1] === 'badtoken') {
        // a token URL that would break the JSON of a client assertion
        const doc = metadata();
        doc.rest[0].security.extension[0].extension[0].valueUri = `http://${opt.host}:${opt.port}/tok"en`;
        return sendJson(res, 200, doc);
      }
      return sendJson(res, 200, metadata());
    }
    const m = /\/(_fault-[a-z0-9]+)$/.exec(rel);
    if (m) return fault(m[1], res);
    if (!validToken(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return sendJson(res, 401, outcome('error', 'login', 'a valid bearer token is required'));
    }
    // HEAD is answered as a GET without its body (Node sends none), and
    // every answer says which method the partner saw
    res.setHeader('X-Mock-Method', req.method);
    // and which request headers reached it (names), for the tests
    res.setHeader('X-Mock-Request-Headers', Object.keys(req.headers).sort().join(','));
    if (req.headers['x-request-id']) res.setHeader('X-Mock-Request-Id', req.headers['x-request-id']);
    const [status, obj] = handleFhir(req.method === 'HEAD' ? 'GET' : req.method, rel, url.searchParams, body, req);
    // a read names its versioned URL on this server, as HAPI does
    if (status === 200 && /^\/[A-Z][A-Za-z]+\/[^/_][^/]*$/.test(rel)) {
      res.setHeader('Content-Location', `${base()}${rel}/_history/${(obj.meta && obj.meta.versionId) || 1}`);
    }
    return sendJson(res, status, obj);
  });
});

server.keepAliveTimeout = 30000;
server.listen(opt.port, opt.host, () => {
  process.stdout.write(`mock partner ${opt.name} (${opt.version}) on ${base()}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
