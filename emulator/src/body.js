'use strict';
// Request body helpers. JSON bodies are small and capped; media bodies are streamed (see gcs.js).
const { invalid, badRequestDetail } = require('./errors');

const JSON_LIMIT = 16 * 1024 * 1024;

function readAll(req, limit = JSON_LIMIT) {
  return new Promise((resolve, reject) => {
    const chunks = []; let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > limit) { reject(invalid('Request payload size exceeds the limit.')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parse a JSON request body; empty body -> {}. Malformed -> Google 400. */
async function readJson(req) {
  const buf = await readAll(req);
  const text = buf.toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = `Invalid JSON payload received. ${e.message.replace(/^Unexpected/, 'Unexpected')}`;
    throw invalid(msg, [badRequestDetail([{ description: msg }])]);
  }
}

module.exports = { readAll, readJson, JSON_LIMIT };
