'use strict';
// Peer for bench/gcs.sh: Google's official Node client (@google-cloud/storage) doing the same
// transfers as dicomgcs against the same emulator.
//   node gcs_bench.js upload-many   DIR    PREFIX  [CONCURRENCY]   every file of DIR → PREFIX (TransferManager.uploadManyFiles)
//   node gcs_bench.js download-many PREFIX DIR     [CONCURRENCY]   every object under PREFIX → DIR (downloadManyFiles)
//   node gcs_bench.js upload-one    FILE   NAME                    one resumable upload (bucket.upload)
//   node gcs_bench.js download-one  NAME   FILE    [CONCURRENCY]   ranged download (downloadFileInChunks, 32 MiB)
// CONCURRENCY "default": the library's own choice (TransferManager's DEFAULT_PARALLEL_*_LIMIT, 5).
// Env: STORAGE_EMULATOR_HOST=http(s)://127.0.0.1:PORT (https: NODE_EXTRA_CA_CERTS), BENCH_BUCKET.
const fs = require('fs');
const path = require('path');
const { Storage, TransferManager } = require('@google-cloud/storage');

async function main() {
  const [cmd, a, b, c] = process.argv.slice(2);
  const host = process.env.STORAGE_EMULATOR_HOST;
  const storage = new Storage({ apiEndpoint: host, projectId: 'bench-project', useAuthWithCustomEndpoint: false });
  const bucket = storage.bucket(process.env.BENCH_BUCKET);
  const tm = new TransferManager(bucket);
  const conc = c === 'default' ? undefined : parseInt(c || '16', 10);
  if (cmd === 'upload-many') {
    const files = fs.readdirSync(a).map((f) => path.join(a, f));
    await tm.uploadManyFiles(files, { concurrencyLimit: conc,
      customDestinationBuilder: (p) => b + path.basename(p), passthroughOptions: { resumable: false } });
  } else if (cmd === 'download-many') {
    fs.mkdirSync(b, { recursive: true });
    const [files] = await bucket.getFiles({ prefix: a });
    let i = 0;
    async function worker() {
      while (i < files.length) {
        const f = files[i++];
        await f.download({ destination: path.join(b, path.basename(f.name)) });
      }
    }
    await Promise.all(Array.from({ length: conc || 5 }, worker)); // 5: DEFAULT_PARALLEL_DOWNLOAD_LIMIT
  } else if (cmd === 'upload-one') {
    await bucket.upload(a, { destination: b, resumable: true });
  } else if (cmd === 'download-one') {
    await tm.downloadFileInChunks(a, { destination: b, chunkSizeBytes: 32 * 1024 * 1024, concurrencyLimit: parseInt(c || '16', 10) });
  } else {
    throw new Error('unknown command ' + cmd);
  }
}

main().catch((e) => { process.stderr.write(`gcs_bench.js: ${e.stack || e}\n`); process.exit(1); });
