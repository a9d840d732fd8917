// Drives photosync's Exchange REST photo URL with ews-javascript-api,
// unmodified. The library has no GetUserPhoto (neither the REST GET nor
// the SOAP operation), so the requests go through the HTTP layer its
// ExchangeService sends everything with (service.XHRApi) to the URL the
// EWS Managed API builds: {service.Url}/s/GetUserPhoto?email=…&size=….
// argv: base URL, an owner with a photo, one without, the sizes.
const ews = require("ews-javascript-api");
const [base, owner, nophoto, ...sizes] = process.argv.slice(2);

const service = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
service.Url = new ews.Uri(base + "/EWS/Exchange.asmx");

// get resolves with the library's XMLHttpRequest-like answer: it resolves
// on 200 and throws the same shape on any other status.
async function get(email, size, headers) {
  let q = "email=" + encodeURIComponent(email);
  if (size) q += "&size=" + size;
  let xhr;
  try {
    xhr = await service.XHRApi.xhr({ type: "GET", url: service.Url.ToString() + "/s/GetUserPhoto?" + q, headers: headers || {} });
  } catch (e) {
    if (typeof e.status !== "number") throw e;
    xhr = e;
  }
  const h = (n) => xhr.getResponseHeader(n) || "";
  return {
    status: xhr.status,
    contentType: h("content-type"),
    contentLength: Number(h("content-length") || 0),
    etag: h("etag"),
    expires: h("expires"),
    cacheControl: h("cache-control"),
    text: xhr.status === 200 ? "" : xhr.responseText,
  };
}

(async () => {
  const out = { url: service.Url.ToString(), sizes: {} };
  for (const size of sizes) {
    const first = await get(owner, size);
    const quoted = await get(owner, size, { "If-None-Match": first.etag });
    const bare = await get(owner, size, { "If-None-Match": first.etag.replace(/"/g, "") });
    out.sizes[size] = { first, quoted, bare };
  }
  out.noPhoto = await get(nophoto, sizes[0]);
  out.noSize = await get(owner, "");
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
