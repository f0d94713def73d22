// Hash routes: `#/` fleet, `#/twins/{id}`, `#/twins/{id}/whatif`, `#/alarms` (`?view=cleared|all`), `#/alarms/{id}`,
// `#/advice` (`?view=closed|all`), `#/advice/{id}`, `#/models`, `#/models/{id}`, `#/signin`.
// Hash routing keeps every page at `/`, so the server's only job is to serve index.html.

export type RouteName = 'signin' | 'fleet' | 'twin' | 'whatif' | 'alarms' | 'alarm' | 'advice' | 'adviceItem' | 'models' | 'model' | 'notfound';

export interface Route {
  name: RouteName;
  /** Path parameters, decoded. */
  id?: string;
  query: URLSearchParams;
  /** The hash path as given (`/twins/pump-1`), for `next=` after sign-in. */
  path: string;
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** `#/{collection}/{id}` routes. */
const ITEM_ROUTES = new Map<string, RouteName>([
  ['twins', 'twin'],
  ['models', 'model'],
  ['alarms', 'alarm'],
  ['advice', 'adviceItem'],
]);

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [pathPart, queryPart = ''] = raw.split('?', 2);
  const path = pathPart.startsWith('/') ? pathPart : `/${pathPart}`;
  const query = new URLSearchParams(queryPart);
  const parts = path.split('/').filter(Boolean);
  const base = { query, path };
  if (parts.length === 0) return { name: 'fleet', ...base };
  if (parts[0] === 'signin' && parts.length === 1) return { name: 'signin', ...base };
  if (parts[0] === 'models' && parts.length === 1) return { name: 'models', ...base };
  if (parts[0] === 'alarms' && parts.length === 1) return { name: 'alarms', ...base };
  if (parts[0] === 'advice' && parts.length === 1) return { name: 'advice', ...base };
  const item = ITEM_ROUTES.get(parts[0]);
  if (parts.length === 2 && item) {
    const id = decode(parts[1]);
    if (id) return { name: item, id, ...base };
  }
  if (parts.length === 3 && parts[0] === 'twins' && parts[2] === 'whatif') {
    const id = decode(parts[1]);
    if (id) return { name: 'whatif', id, ...base };
  }
  return { name: 'notfound', ...base };
}

/** The route to return to after sign-in: only a dashboard route, never an outside URL. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/signin')) return '/';
  return next;
}
