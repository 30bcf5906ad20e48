'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const { request } = require('./helpers');

const START = path.join(__dirname, '..', 'start');
// Gone, or a zombie nobody reaps (a container whose PID 1 is no init): dead either way.
function dead(pid) {
  try { return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch (_) { return true; }
}
const STOP = path.join(__dirname, '..', 'stop');

test('start/stop scripts: exports, files, refusal, two at once', async () => {
  const d1 = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-s1-'));
  const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-s2-'));
  try {
    const out = execFileSync(START, ['--data', d1, '--op-delay-ms', '5']).toString();
    const m = /^export DICOMGCS_EMULATOR_HOST=127\.0\.0\.1:(\d+)\nexport STORAGE_EMULATOR_HOST=http:\/\/127\.0\.0\.1:(\d+)\n$/.exec(out);
    assert.ok(m, out); assert.strictEqual(m[1], m[2]);
    assert.strictEqual(fs.readFileSync(path.join(d1, 'env'), 'utf8'), out);
    const pid = parseInt(fs.readFileSync(path.join(d1, 'emulator.pid'), 'utf8'), 10);
    process.kill(pid, 0);
    const r = await request(+m[1], 'GET', '/_emulator/health');
    assert.strictEqual(r.json.pid, pid);
    const again = spawnSync(START, ['--data', d1]);
    assert.notStrictEqual(again.status, 0); assert.match(again.stderr.toString(), /already runs/);
    const bad = spawnSync(START, ['--data', d2, '--bogus']);
    assert.notStrictEqual(bad.status, 0); assert.match(bad.stderr.toString(), /unknown option/);
    const out2 = execFileSync(START, ['--data', d2]).toString();
    assert.notStrictEqual(out2, out);
    execFileSync(STOP, ['--data', d1]);
    assert.ok(!fs.existsSync(path.join(d1, 'emulator.pid')));
    assert.ok(dead(pid));
    execFileSync(STOP, ['--data', d2]);
    assert.notStrictEqual(spawnSync(STOP, ['--data', d2]).status, 0);
  } finally {
    spawnSync(STOP, ['--data', d1]); spawnSync(STOP, ['--data', d2]);
    fs.rmSync(d1, { recursive: true, force: true }); fs.rmSync(d2, { recursive: true, force: true });
  }
});

test('start after kill -9: the same --data and --port serve again (a dead, unreaped emulator does not block it)', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-s3-'));
  try {
    const out = execFileSync(START, ['--data', d]).toString();
    const port = /127\.0\.0\.1:(\d+)/.exec(out)[1];
    const pid = parseInt(fs.readFileSync(path.join(d, 'emulator.pid'), 'utf8'), 10);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 200 && !dead(pid); i++) await new Promise((r) => setTimeout(r, 10));
    const again = execFileSync(START, ['--data', d, '--port', port]).toString();
    assert.strictEqual(again, out);
    const r = await request(+port, 'GET', '/_emulator/health');
    assert.notStrictEqual(r.json.pid, pid);
  } finally {
    spawnSync(STOP, ['--data', d]);
    fs.rmSync(d, { recursive: true, force: true });
  }
});
