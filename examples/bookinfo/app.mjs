#!/usr/bin/env node
// A bookinfo-style application for the Trellis demo: one small HTTP server that plays any of
// its services. It knows nothing about the mesh: it listens on 127.0.0.1:$PORT and calls other
// services by name through the sidecar's HTTP proxy ($HTTP_PROXY), like any app behind a proxy.
//
//   productpage  GET /productpage  → details (GET /details/0) and reviews (GET /reviews/0)
//   details      GET /details/:id
//   reviews      GET /reviews/:id   v1: no ratings; v2 (black stars) and v3 (red stars) call ratings
//   ratings      GET /ratings/:id
//
// The timeouts are Istio bookinfo's, so that its fault-injection tasks behave as documented:
// productpage gives details 3 s and reviews 3 s with one retry (6 s in all); reviews v2 gives
// ratings 10 s, v3 2.5 s. With ratings delayed 7 s (virtual-service-ratings-test-delay.yaml),
// productpage gives up on reviews v2 after 6 s: "product reviews are currently unavailable".
//
// Usage: node app.mjs <service> [version]     (PORT and HTTP_PROXY come from `trellis run`)
import http from 'node:http';

const [service = 'productpage', version = 'v1'] = process.argv.slice(2);
const port = Number(process.env.PORT ?? 9080);
const proxy = process.env.HTTP_PROXY ? new URL(process.env.HTTP_PROXY) : undefined;

// Headers an app forwards so the mesh can follow a request across services (bookinfo's list).
const PROPAGATED = ['x-request-id', 'end-user', 'user-agent', 'traceparent', 'tracestate', 'authorization'];

/** Calls another service through the sidecar: an absolute-form request to the proxy port. */
function call(url, incoming, timeoutMs) {
  const headers = {};
  for (const name of PROPAGATED) if (incoming.headers[name]) headers[name] = incoming.headers[name];
  const target = new URL(url);
  const options = proxy
    ? { host: proxy.hostname, port: proxy.port, path: target.href, headers: { ...headers, host: target.host } }
    : { host: target.hostname, port: target.port, path: target.pathname, headers };
  return new Promise((resolve) => {
    const req = http.get(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body, denied: res.headers['x-trellis-denied'] }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

/** productpage's reviews call: one retry, as Istio's productpage does. */
async function callWithRetry(url, incoming, timeoutMs) {
  const first = await call(url, incoming, timeoutMs);
  return first.status === 200 ? first : call(url, incoming, timeoutMs);
}

/** A 200 answer's JSON, or `{ error }` saying what went wrong (status, body, the mesh's reason). */
function parse(result) {
  if (result.status === 200) {
    try {
      return JSON.parse(result.body);
    } catch {
      // not JSON: reported below
    }
  }
  return { error: result.status ? `${result.status} ${result.body.trim()}` : result.body, ...(result.denied ? { deniedBy: result.denied } : {}) };
}

const handlers = {
  productpage: async (req) => {
    if (!req.url.startsWith('/productpage')) return [404, { error: 'not found' }];
    const [details, reviews] = await Promise.all([
      call('http://details.default.svc.cluster.local:9080/details/0', req, 3000),
      callWithRetry('http://reviews.default.svc.cluster.local:9080/reviews/0', req, 3000),
    ]);
    const reviewsBody = parse(reviews);
    if (reviewsBody.error) reviewsBody.error = `Sorry, product reviews are currently unavailable for this book (${reviewsBody.error})`;
    return [200, { product: 'The Comedy of Errors', user: req.headers['end-user'] ?? null, details: parse(details), reviews: reviewsBody }];
  },
  details: async (req) => {
    if (!req.url.startsWith('/details/')) return [404, { error: 'not found' }];
    return [200, { id: Number(req.url.split('/')[2]), author: 'William Shakespeare', year: 1595, pages: 200, publisher: 'PublisherA', language: 'English' }];
  },
  reviews: async (req) => {
    if (!req.url.startsWith('/reviews/')) return [404, { error: 'not found' }];
    const reviews = [
      { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
      { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
    ];
    if (version !== 'v1') {
      const ratings = parse(await call('http://ratings.default.svc.cluster.local:9080/ratings/0', req, version === 'v2' ? 10_000 : 2_500));
      const color = version === 'v2' ? 'black' : 'red';
      const error = ratings.error ? { error: `Ratings service is currently unavailable (${ratings.error})` } : {};
      reviews[0].rating = { stars: ratings.ratings?.Reviewer1 ?? null, color, ...error };
      reviews[1].rating = { stars: ratings.ratings?.Reviewer2 ?? null, color, ...error };
    }
    return [200, { id: Number(req.url.split('/')[2]), podname: `reviews-${version}`, reviews }];
  },
  ratings: async (req) => {
    if (!req.url.startsWith('/ratings/')) return [404, { error: 'not found' }];
    return [200, { id: Number(req.url.split('/')[2]), ratings: { Reviewer1: 5, Reviewer2: 4 } }];
  },
};

const handle = handlers[service];
if (!handle) {
  console.error(`unknown service "${service}": use one of ${Object.keys(handlers).join(', ')}`);
  process.exit(2);
}

const server = http.createServer(async (req, res) => {
  if (req.url === '/health') return void res.end('ok');
  const [status, body] = await handle(req);
  // The caller's identity, as the sidecar verified it, arrives in x-forwarded-client-cert.
  const caller = /URI=([^;,]+)/.exec(req.headers['x-forwarded-client-cert'] ?? '')?.[1] ?? null;
  res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': `${service}-${version}` });
  res.end(JSON.stringify({ ...body, servedBy: `${service}-${version}`, caller }));
});

// Loopback only: the sidecar is the only way in.
server.listen(port, '127.0.0.1', () => console.log(`${service}-${version} listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
