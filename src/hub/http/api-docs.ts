// A static HTML reference of the REST API, rendered from the OpenAPI document (no external assets, no scripts).
import type { RouteDoc } from './openapi.js';
import { API_ROUTES, openApiPath } from './openapi.js';
import { escapeHtml as esc } from '../../lib/html.js';


/**
 * The API reference page served at `/hub/docs/api` (and kept in `docs/api.html` by `npm run docs`).
 *
 * @example
 * const html = renderApiReference('0.1.0');
 */
export function renderApiReference(version: string, routes: readonly RouteDoc[] = API_ROUTES): string {
  const rows = routes
    .map((route) => {
      const path = `/hub/api${route.path === '/' ? '/' : openApiPath(route.path)}`;
      const responses = Object.entries(route.responses)
        .map(([status, r]) => `<li><code>${status}</code> ${esc(r.description)}</li>`)
        .join('');
      const body = route.body?.example === undefined ? '' : `<p>Body, e.g.</p><pre>${esc(JSON.stringify(route.body.example, null, 2))}</pre>`;
      const scopes = route.public
        ? 'none (no authentication)'
        : route.scopes.length
          ? `${route.scopes.map((s) => `<code>${esc(s)}</code>`).join(' or ')}${route.path.includes(':name') ? ' (filtered to the user in the path counts, e.g. <code>!user=alice</code>)' : ''}`
          : 'any valid credential';
      return `<section id="${esc(`${route.method}-${path}`)}">
<h2><span class="method">${route.method.toUpperCase()}</span> <code>${esc(path)}</code></h2>
<p>${esc(route.summary)}</p>
<p class="scopes">Scopes: ${scopes}</p>
${body}<ul>${responses}</ul>
</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dspool hub API ${esc(version)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem} h2{font-size:1.05rem;margin:1.6rem 0 .4rem} .method{display:inline-block;min-width:4.2rem;color:#0b5cad}
pre{background:#f6f8fa;padding:.6rem;overflow:auto} .scopes{color:#57606a;font-size:.9rem} section{border-top:1px solid #d0d7de}
</style></head><body>
<h1>dspool hub API ${esc(version)}</h1>
<p>JupyterHub-compatible where the routes overlap. Send <code>Authorization: token &lt;token&gt;</code>. Errors are always
JSON <code>{"status", "message", "field"?}</code>. The machine-readable form is <a href="/hub/api/openapi.json">/hub/api/openapi.json</a> (OpenAPI 3.1).</p>
${rows}
</body></html>
`;
}
