import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadServiceClientSecrets } from "../../src/service-clients.ts";

describe("registered service clients", () => {
  it("reads a mounted Kubernetes Secret, one file per client, skipping its ..data links", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "service-clients-"));
    const version = path.join(dir, "..2026_11_27_01_00_00.1");
    fs.mkdirSync(version);
    fs.writeFileSync(path.join(version, "orders"), "a-random-secret-of-forty-characters-xx\n");
    fs.symlinkSync(path.basename(version), path.join(dir, "..data"));
    fs.symlinkSync(path.join("..data", "orders"), path.join(dir, "orders"));
    const secrets = loadServiceClientSecrets({ SERVICE_CLIENTS_DIR: dir, SERVICE_CLIENTS: undefined });
    assert.deepEqual([...secrets], [["orders", "a-random-secret-of-forty-characters-xx"]]);
  });

  it("takes the development list and refuses a short secret, a bad name and a client registered twice", () => {
    assert.deepEqual([...loadServiceClientSecrets({ SERVICE_CLIENTS: "orders=0123456789abcdefghijkl", SERVICE_CLIENTS_DIR: undefined })], [["orders", "0123456789abcdefghijkl"]]);
    assert.throws(() => loadServiceClientSecrets({ SERVICE_CLIENTS: "orders=short", SERVICE_CLIENTS_DIR: undefined }), /shorter than 22/);
    assert.throws(() => loadServiceClientSecrets({ SERVICE_CLIENTS: "Orders!=0123456789abcdefghijkl", SERVICE_CLIENTS_DIR: undefined }), /must be a service name/);
    assert.throws(() => loadServiceClientSecrets({ SERVICE_CLIENTS: "orders=0123456789abcdefghijkl,orders=0123456789abcdefghijkm", SERVICE_CLIENTS_DIR: undefined }), /registered twice/);
  });
});
