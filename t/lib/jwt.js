#!/usr/bin/env node
// Test helper: makes JSON Web Tokens, good and bad, with node's crypto.
//   jwt.js sign KEY.pem ALG KID PAYLOAD_JSON [HEADER_EXTRA_JSON]  (RS256 PS256 ES256)
//   jwt.js hs256 SECRET_FILE KID PAYLOAD_JSON    (HMAC with the file's bytes)
//   jwt.js none PAYLOAD_JSON
//   jwt.js keys DIR   -> DIR/ext-rsa.pem DIR/ext-ec.pem DIR/other-rsa.pem DIR/jwks.json
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const [cmd, ...a] = process.argv.slice(2);

function compact(header, payload, sign) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(payload)}`;
  return `${input}.${sign ? b64u(sign(Buffer.from(input))) : ''}`;
}

if (cmd === 'sign') {
  const [keyFile, alg, kid, payload, extra] = a;
  const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
  const header = Object.assign({ alg, typ: 'JWT', kid }, extra ? JSON.parse(extra) : {});
  const sign = (data) => {
    if (alg === 'ES256') return crypto.sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    if (alg === 'PS256') {
      return crypto.sign('sha256', data, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32 });
    }
    return crypto.sign('sha256', data, key);
  };
  process.stdout.write(compact(header, payload, sign));
} else if (cmd === 'hs256') {
  const [secretFile, kid, payload] = a;
  const secret = fs.readFileSync(secretFile);
  process.stdout.write(compact({ alg: 'HS256', typ: 'JWT', kid }, payload,
    (data) => crypto.createHmac('sha256', secret).update(data).digest()));
} else if (cmd === 'none') {
  process.stdout.write(compact({ alg: 'none', typ: 'JWT' }, a[0], null));
} else if (cmd === 'keys') {
  const dir = a[0];
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(path.join(dir, 'ext-rsa.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(path.join(dir, 'ext-ec.pem'), ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(path.join(dir, 'other-rsa.pem'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const jwk = (k, kid, alg) => Object.assign(k.publicKey.export({ format: 'jwk' }), { kid, use: 'sig' },
    alg ? { alg } : {});
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({
    keys: [jwk(rsa, 'ext-rsa'), jwk(ec, 'ext-ec', 'ES256')],
  }));
} else {
  process.stderr.write('usage: jwt.js sign|hs256|none|keys ...\n');
  process.exit(2);
}
