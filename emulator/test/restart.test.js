'use strict';
// A running import or export survives `kill -9` of the emulator: restarted on the same --data
// folder (and port), it goes on from the persisted state and processes every file exactly once.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { request, makeDicom, upload, makeBucket, sleep } = require('./helpers');

const MAIN = path.join(__dirname, '..', 'src', 'main.js');
const P = '/v1/projects/p/locations/us-central1';
const DS = 'projects/p/locations/us-central1/datasets/ds';
const ST = `${DS}/dicomStores/st`;
const FILES = 30;

async function start(dataDir, port) {
  const portFile = path.join(dataDir, `port-${Date.now()}`);
  const child = spawn(process.execPath, [MAIN, '--data', dataDir, '--port', String(port || 0), '--port-file', portFile, '--op-delay-ms', '15'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  for (;;) {
    if (child.exitCode !== null) throw new Error('the emulator exited during start-up');
    if (fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim()) break;
    await sleep(20);
  }
  const p = parseInt(fs.readFileSync(portFile, 'utf8'), 10);
  return { child, port: p, request: (m, u, o) => request(p, m, u, o) };
}

function kill9(emu) {
  return new Promise((r) => { emu.child.once('exit', r); emu.child.kill('SIGKILL'); });
}

async function poll(emu, name, until) {
  for (;;) {
    const r = await emu.request('GET', `/v1/${name}`);
    if (until(r.json)) return r.json;
    await sleep(10);
  }
}
const counted = (op) => Number((op.metadata.counter || {}).success || 0) + Number((op.metadata.counter || {}).failure || 0);

test('import and export killed mid-way resume after a restart on the same data folder and port', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dgemu-restart-'));
  let emu = await start(dataDir);
  try {
    await makeBucket(emu, 'src');
    let r = await emu.request('POST', `${P}/datasets?datasetId=ds`, { body: {} });
    await poll(emu, r.json.name, (o) => o.done);
    r = await emu.request('POST', `/v1/${DS}/dicomStores?dicomStoreId=st`, { body: {} });
    assert.strictEqual(r.status, 200);
    for (let i = 0; i < FILES; i++) await upload(emu, 'src', `in/f${String(i).padStart(3, '0')}.dcm`, makeDicom({ sop: `1.2.3.9.${i}` }));

    r = await emu.request('POST', `/v1/${ST}:import`, { body: { gcsSource: { uri: 'gs://src/in/**' } } });
    assert.strictEqual(r.status, 200);
    const imp = r.json.name;
    const before = await poll(emu, imp, (o) => counted(o) >= 8);
    assert.ok(!before.done, 'the import must still run when the emulator is killed');
    await kill9(emu);
    emu = await start(dataDir, emu.port);
    let op = await poll(emu, imp, (o) => o.done);
    assert.strictEqual(op.error, undefined, JSON.stringify(op.error));
    assert.deepStrictEqual(op.metadata.counter, { success: String(FILES) });
    let st = (await emu.request('GET', '/_emulator/state')).json;
    assert.strictEqual(st.dicomStores.find((s) => s.name === ST).instances, FILES);

    r = await emu.request('POST', `/v1/${ST}:export`, { body: { gcsDestination: { uriPrefix: 'gs://src/out/' } } });
    const exp = r.json.name;
    await poll(emu, exp, (o) => counted(o) >= 8 || o.done);
    await kill9(emu);
    emu = await start(dataDir, emu.port);
    op = await poll(emu, exp, (o) => o.done);
    assert.strictEqual(op.error, undefined, JSON.stringify(op.error));
    assert.deepStrictEqual(op.metadata.counter, { success: String(FILES) });
    r = await emu.request('GET', '/storage/v1/b/src/o?prefix=out/');
    assert.strictEqual(r.json.items.length, FILES);
  } finally {
    if (emu.child.exitCode === null) await kill9(emu);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a dataset creation running at a kill ends with an error after the restart (its work is done)', async () => {
  const { Operations } = require('../src/operations');
  const ops = new Operations();
  const resumable = ops.fromState([
    { name: 'projects/p/locations/l/datasets/d/operations/1', dataset: 'projects/p/locations/l/datasets/d', apiMethodName: 'x', createTime: 't', done: false },
    { name: 'projects/p/locations/l/datasets/d/operations/2', dataset: 'projects/p/locations/l/datasets/d', apiMethodName: 'y', createTime: 't', done: false, counter: { success: 1, failure: 0, pending: 2 }, job: { kind: 'import' } },
  ]);
  assert.deepStrictEqual(resumable.map((o) => o.name), ['projects/p/locations/l/datasets/d/operations/2']);
  assert.strictEqual(ops.get('projects/p/locations/l/datasets/d/operations/1').error.code, 10);
  assert.strictEqual(ops.get('projects/p/locations/l/datasets/d/operations/2').done, false);
});
