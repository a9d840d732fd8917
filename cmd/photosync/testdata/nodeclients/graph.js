// Drives photosync with the Microsoft Graph JavaScript client, unmodified.
// argv: base URL, an owner with a photo, the viewer for /me, one without.
const { Client, ResponseType, GraphError } = require("@microsoft/microsoft-graph-client");
const [base, owner, viewer, nophoto] = process.argv.slice(2);

const client = Client.init({
  authProvider: (done) => done(null, "token"),
  baseUrl: base,
  defaultVersion: "v1.0",
  // The client sends its token only to https hosts it knows; photosync
  // ignores tokens, so this only shows the option is accepted.
  customHosts: new Set([new URL(base).hostname]),
});

const b64 = (ab) => Buffer.from(ab).toString("base64");
const calls = {
  blob: async () => {
    const blob = await client.api(`/users/${owner}/photo/$value`).get();
    return { class: blob.constructor.name, type: blob.type, body: b64(await blob.arrayBuffer()) };
  },
  value: async () => ({ body: b64(await client.api(`/users/${owner}/photo/$value`).responseType(ResponseType.ARRAYBUFFER).get()) }),
  sized: async () => ({ body: b64(await client.api(`/users/${owner}/photos/96x96/$value`).responseType(ResponseType.ARRAYBUFFER).get()) }),
  beta: async () => ({ body: b64(await client.api(`/users/${owner}/photos/48x48/$value`).version("beta").responseType(ResponseType.ARRAYBUFFER).get()) }),
  metadata: async () => ({ json: await client.api(`/users/${owner}/photo`).get() }),
  sizedMetadata: async () => ({ json: await client.api(`/users/${owner}/photos/240x240`).get() }),
  me: async () => ({ body: b64(await client.api("/me/photo/$value").header("X-Forwarded-Email", viewer).responseType(ResponseType.ARRAYBUFFER).get()) }),
  viewer: async () => ({ body: b64(await client.api(`/users/${viewer}/photo/$value`).responseType(ResponseType.ARRAYBUFFER).get()) }),
  meMetadata: async () => ({ json: await client.api("/me/photo").header("X-Forwarded-Email", viewer).get() }),
  noPhoto: async () => ({ body: b64(await client.api(`/users/${nophoto}/photo/$value`).get()) }),
  noPhotoArrayBuffer: async () => ({ body: b64(await client.api(`/users/${nophoto}/photo/$value`).responseType(ResponseType.ARRAYBUFFER).get()) }),
  noPhotoMetadata: async () => ({ json: await client.api(`/users/${nophoto}/photo`).get() }),
  anonymousMe: async () => ({ body: b64(await client.api("/me/photo/$value").get()) }),
  badSize: async () => ({ body: b64(await client.api(`/users/${owner}/photos/100x100/$value`).get()) }),
  // A cached copy revalidated: RAW hands back the fetch Response, so the
  // caller sees the 304 (any other response type throws on it).
  revalidate: async () => {
    const first = await client.api(`/users/${owner}/photo/$value`).responseType(ResponseType.RAW).get();
    const etag = first.headers.get("etag");
    const again = await client.api(`/users/${owner}/photo/$value`).header("If-None-Match", etag).responseType(ResponseType.RAW).get();
    return { status: again.status, etag, againETag: again.headers.get("etag"), first: first.status };
  },
};

(async () => {
  const out = {};
  for (const [name, call] of Object.entries(calls)) {
    try {
      out[name] = { ok: true, ...(await call()) };
    } catch (e) {
      // With ResponseType.ARRAYBUFFER the client hands over the error's
      // body undecoded (it does so for Graph itself): decode it here.
      let body = e.body;
      if (body instanceof ArrayBuffer) body = Buffer.from(body).toString();
      out[name] = { ok: false, graphError: e instanceof GraphError, statusCode: e.statusCode, code: e.code, message: e.message, errorBody: typeof body === "string" ? body : undefined };
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
