// The HTTP API client: the token from sign-in goes in `Authorization: Bearer` (and in
// `access_token` for the WebSocket, which cannot carry headers). Errors carry the server's
// `{"error", "field"}` message.

import type {
  AdviceItem,
  AdviceState,
  Alarm,
  AlarmState,
  AssetModel,
  Dynamics,
  HistoryAnswer,
  OptimizeAnswer,
  OptimizeRequest,
  Outcome,
  RulEstimate,
  ScenariosRequest,
  Troubleshooting,
  Twin,
  TwinState,
  Verdict,
  WhatIfAnswer,
} from './types';

const TOKEN_KEY = 'doppel.token';

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let unauthorized: (() => void) | null = null;

/** Called when a request with the stored token answers 401 (revoked or expired token). */
export function onUnauthorized(f: () => void): void {
  unauthorized = f;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
  /** A token to try instead of the stored one (sign-in). */
  token?: string;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const token = opts.token ?? getToken();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the doppel server cannot be reached');
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    let field: string | undefined;
    try {
      const body = (await res.json()) as { error?: string; field?: string };
      if (body.error) message = body.error;
      field = body.field;
    } catch {
      // not JSON: keep the status line
    }
    if (res.status === 401 && opts.token === undefined) unauthorized?.();
    throw new ApiError(res.status, message, field);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

let routes: Promise<Set<string> | null> | null = null;

/**
 * The API paths this server documents (`/api/v1/openapi.json`, read once per tab), or null
 * when it cannot say. Pages ask before calling a route an older server may lack, so that a
 * missing route shows as "not available" instead of a refused request in the console.
 */
export function serverRoutes(): Promise<Set<string> | null> {
  // Not tied to one page's abort signal: every page shares the answer.
  if (!routes) {
    routes = request<{ paths?: Record<string, unknown> }>('/api/v1/openapi.json').then(
      (doc) => new Set(Object.keys(doc.paths ?? {}).map(routeShape)),
      () => {
        // Asked again next time (the server may have been unreachable).
        routes = null;
        return null;
      },
    );
  }
  return routes;
}

/** A documented path with its parameters unnamed: `/api/v1/twins/{id}/rul` → `/api/v1/twins/{}/rul`. */
export function routeShape(path: string): string {
  return path.replace(/\{[^}]*\}/g, '{}');
}

/** Whether the server documents `path` (parameters in braces, whatever their names). */
export async function hasRoute(path: string): Promise<boolean> {
  return (await serverRoutes())?.has(routeShape(path)) ?? false;
}

export interface HistoryQuery {
  fromMs: number;
  toMs: number;
  /** A step the server reads (`10s`, `500ms`); absent for raw points. */
  step?: string;
  agg?: 'mean' | 'min' | 'max' | 'first' | 'last' | 'count' | 'sum';
  limit?: number;
}

export const api = {
  models: (signal?: AbortSignal) => request<AssetModel[]>('/api/v1/models', { signal }),
  model: (id: string, signal?: AbortSignal) => request<AssetModel>(`/api/v1/models/${enc(id)}`, { signal }),
  twins: (signal?: AbortSignal) => request<Twin[]>('/api/v1/twins', { signal }),
  twin: (id: string, signal?: AbortSignal) => request<TwinState>(`/api/v1/twins/${enc(id)}`, { signal }),
  history(twin: string, sig: string, q: HistoryQuery, signal?: AbortSignal) {
    const p = new URLSearchParams({ from: String(Math.floor(q.fromMs)), to: String(Math.ceil(q.toMs)) });
    if (q.step) p.set('step', q.step);
    if (q.agg) p.set('agg', q.agg);
    if (q.limit) p.set('limit', String(q.limit));
    return request<HistoryAnswer>(`/api/v1/twins/${enc(twin)}/signals/${enc(sig)}/history?${p}`, { signal });
  },
  async alarms(states: readonly AlarmState[], signal?: AbortSignal, limit = 500) {
    const p = new URLSearchParams({ state: states.join(','), limit: String(limit) });
    return (await request<{ alarms: Alarm[] }>(`/api/v1/alarms?${p}`, { signal })).alarms;
  },
  alarm: (id: string, signal?: AbortSignal) => request<Alarm>(`/api/v1/alarms/${enc(id)}`, { signal }),
  acknowledge: (id: string) => request<Alarm>(`/api/v1/alarms/${enc(id)}/ack`, { method: 'POST', body: {} }),
  /** Hides the alarm for `duration` (`1h`, `30m`). */
  shelve: (id: string, duration: string) => request<Alarm>(`/api/v1/alarms/${enc(id)}/shelve`, { method: 'POST', body: { for: duration } }),
  unshelve: (id: string) => request<Alarm>(`/api/v1/alarms/${enc(id)}/unshelve`, { method: 'POST' }),
  clear: (id: string) => request<Alarm>(`/api/v1/alarms/${enc(id)}/clear`, { method: 'POST', body: {} }),
  feedback: (id: string, verdict: Verdict, faultKind?: string) =>
    request<Alarm>(`/api/v1/alarms/${enc(id)}/feedback`, {
      method: 'POST',
      body: faultKind ? { verdict, fault_kind: faultKind } : { verdict },
    }),
  /** The twin's identified dynamics; 404 until they are fitted. */
  dynamics: (twin: string, signal?: AbortSignal) => request<Dynamics>(`/api/v1/twins/${enc(twin)}/dynamics`, { signal }),
  /** Fits the dynamics from the twin's history (409 when the history cannot answer yet). */
  fitDynamics: (twin: string, signal?: AbortSignal) =>
    request<Dynamics>(`/api/v1/twins/${enc(twin)}/dynamics`, { method: 'POST', body: {}, signal }),
  scenarios: (twin: string, body: ScenariosRequest, signal?: AbortSignal) =>
    request<WhatIfAnswer>(`/api/v1/twins/${enc(twin)}/scenarios`, { method: 'POST', body, signal }),
  optimize: (twin: string, body: OptimizeRequest, signal?: AbortSignal) =>
    request<OptimizeAnswer>(`/api/v1/twins/${enc(twin)}/optimize`, { method: 'POST', body, signal }),
  troubleshootAlarm: (id: string, signal?: AbortSignal) =>
    request<Troubleshooting>(`/api/v1/alarms/${enc(id)}/troubleshoot`, { signal }),
  /** Maintenance advice in `states`, of one twin or all, newest first. */
  async advice(states: readonly AdviceState[], opts: { twin?: string; signal?: AbortSignal; limit?: number } = {}) {
    const p = new URLSearchParams({ state: states.join(','), limit: String(opts.limit ?? 500) });
    if (opts.twin) p.set('twin', opts.twin);
    return (await request<{ advice: AdviceItem[] }>(`/api/v1/advice?${p}`, { signal: opts.signal })).advice;
  },
  adviceItem: (id: string, signal?: AbortSignal) => request<AdviceItem>(`/api/v1/advice/${enc(id)}`, { signal }),
  /** Plans the work: `forTime` RFC 3339; the token's id is recorded as who scheduled it. */
  scheduleAdvice: (id: string, forTime: string, note?: string) =>
    request<AdviceItem>(`/api/v1/advice/${enc(id)}/schedule`, { method: 'POST', body: note ? { for: forTime, note } : { for: forTime } }),
  adviceDone: (id: string, outcome: Outcome, note?: string) =>
    request<AdviceItem>(`/api/v1/advice/${enc(id)}/done`, { method: 'POST', body: note ? { outcome, note } : { outcome } }),
  /** The twin's remaining useful life; null when this server does not estimate it. */
  async rul(twin: string, signal?: AbortSignal): Promise<RulEstimate | null> {
    if (!(await hasRoute('/api/v1/twins/{id}/rul'))) return null;
    return request<RulEstimate>(`/api/v1/twins/${enc(twin)}/rul`, { signal });
  },
  /** Every twin's remaining useful life (estimated ones first, shortest first); null when not estimated here. */
  async fleetRul(model?: string, signal?: AbortSignal): Promise<RulEstimate[] | null> {
    if (!(await hasRoute('/api/v1/rul'))) return null;
    const q = model ? `?${new URLSearchParams({ model })}` : '';
    return (await request<{ twins: RulEstimate[] }>(`/api/v1/rul${q}`, { signal })).twins;
  },
};

/** Runs `f` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
