'use strict';
// DICOM instance storage shared by import, export (and later DICOMweb): per store, one entry per
// SOP Instance UID; bytes in DIR/hc/instances/i-<run>-<n>.dcm, a file of its own per record
// (ids.fileName). A deleted instance's file is removed asynchronously: with one name per UID that
// removal could land after the same UID was stored again and take the new bytes with it.
const fs = require('fs');
const path = require('path');
const { fileName } = require('./ids');

class Instances {
  constructor(dir) {
    this.dir = path.join(dir, 'hc', 'instances');
    fs.mkdirSync(this.dir, { recursive: true });
  }
  /** Add a parsed instance from srcPath to store (a store record with .instances Map). Returns
   * 'added'|'duplicate'. opts.move: srcPath is the emulator's own temp file (a STOW body), renamed
   * into place instead of copied (a copy of every stored byte was a tenth of its STOW CPU). */
  add(store, info, srcPath, opts = {}) {
    if (store.instances.has(info.sopUid)) return 'duplicate'; // never overwrite (Healthcare import rule)
    const file = path.join(this.dir, fileName('i') + '.dcm');
    if (opts.move) fs.renameSync(srcPath, file); else fs.copyFileSync(srcPath, file);
    store.instances.set(info.sopUid, {
      studyUid: info.studyUid, seriesUid: info.seriesUid, sopUid: info.sopUid, sopClassUid: info.sopClassUid,
      transferSyntax: info.transferSyntax, numberOfFrames: info.numberOfFrames, size: info.size, file,
    });
    return 'added';
  }
  removeStore(store) {
    for (const i of store.instances.values()) fs.rmSync(i.file, { force: true });
    store.instances.clear();
  }
  reset() { fs.rmSync(this.dir, { recursive: true, force: true }); fs.mkdirSync(this.dir, { recursive: true }); }
}

module.exports = { Instances };
