#!/usr/bin/env node
// A listener for spec/security_spec.lua: records every request it gets (method, url, headers,
// body) and answers 200 {} — a stand-in for a host that should receive no secret. Prints
// "PORT <port> PID <pid>"; stops on SIGTERM or after 5 minutes.
//   GET  /_requests            the recorded requests (JSON), not recorded itself
//   POST /_lookup_path         body: the Path the fake Orthanc's /tools/lookup returns
//   /orthanc/dicom-web/...     DELETE answers 405 (as Orthanc's DICOMweb plugin does)
//   /orthanc/system            {"ApiVersion": 4}: "this is an Orthanc"
//   /orthanc/tools/lookup      [{"Type": "Study", "Path": <the path set above>}]
'use strict';
const http = require('http');

const seen = [];
let lookupPath = '/studies/0000';
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('latin1');
    const json = (status, v) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    if (req.url === '/_requests') return json(200, seen);
    if (req.url === '/_lookup_path') { lookupPath = body; return json(200, {}); }
    seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    if (req.url.startsWith('/orthanc/dicom-web/') && req.method === 'DELETE') return json(405, {});
    if (req.url === '/orthanc/system') return json(200, { ApiVersion: 4 });
    if (req.url === '/orthanc/tools/lookup') return json(200, [{ Type: 'Study', Path: lookupPath }]);
    return json(200, {});
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port} PID ${process.pid}\n`);
});
setTimeout(() => process.exit(0), 300000).unref();
process.on('SIGTERM', () => process.exit(0));
