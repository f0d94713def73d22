// The live stream: one WebSocket to `/api/v1/stream` per page, filtered by twin and event
// type (readings unless a page asks for alarm or advice changes), reconnecting with backoff when
// the server goes away. A `lagged` message (the server skipped events because this client
// was slow) is counted and shown, not hidden.

import { getToken } from './api';
import { stats } from './frames';
import type { AdviceEvent, AlarmEvent, EventType, LiveEvent } from './types';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface StreamFilter {
  twin?: string[];
  model?: string[];
  signal?: string[];
  /** Event types to receive; readings only when absent. */
  type?: EventType[];
}

/** `ws://host/api/v1/stream?twin=a,b&access_token=...` for the page's origin. */
export function streamUrl(loc: { protocol: string; host: string }, filter: StreamFilter, token: string | null): string {
  const p = new URLSearchParams();
  for (const key of ['twin', 'model', 'signal'] as const) {
    const list = filter[key];
    if (list && list.length) p.set(key, list.join(','));
  }
  p.set('type', (filter.type?.length ? filter.type : ['reading']).join(','));
  if (token) p.set('access_token', token);
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/api/v1/stream?${p.toString()}`;
}

/** Waits before reconnect attempt `n` (0-based): 0.5 s, 1 s, 2 s, 4 s, then 8 s. */
export function backoffMs(n: number): number {
  return Math.min(500 * 2 ** n, 8000);
}

const statusListeners = new Set<(s: LiveStatus, detail: string) => void>();

/** Follows the status of whichever stream is open (the header's indicator). */
export function onLiveStatus(f: (s: LiveStatus, detail: string) => void): void {
  statusListeners.add(f);
}

function announce(s: LiveStatus, detail: string): void {
  for (const f of statusListeners) f(s, detail);
}

/** What one message of the stream is, for the handler that takes it. */
export type StreamMessage =
  | { kind: 'reading'; event: LiveEvent }
  | { kind: 'alarm'; event: AlarmEvent }
  | { kind: 'advice'; event: AdviceEvent }
  | { kind: 'lagged'; skipped: number }
  | { kind: 'other' };

/** Reads one text message; anything unknown or malformed is `other` (ignored). */
export function parseMessage(data: string): StreamMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return { kind: 'other' };
  }
  if (typeof msg !== 'object' || msg === null) return { kind: 'other' };
  const m = msg as { type?: unknown; skipped?: unknown; alarm?: unknown; advice?: unknown; values?: unknown };
  if (m.type === 'lagged') return { kind: 'lagged', skipped: typeof m.skipped === 'number' ? m.skipped : 0 };
  if (m.type === 'alarm') return typeof m.alarm === 'object' && m.alarm !== null ? { kind: 'alarm', event: msg as AlarmEvent } : { kind: 'other' };
  if (m.type === 'advice') return typeof m.advice === 'object' && m.advice !== null ? { kind: 'advice', event: msg as AdviceEvent } : { kind: 'other' };
  // Servers before event types sent readings without `type`.
  if ((m.type === 'reading' || m.type === undefined) && typeof m.values === 'object' && m.values !== null) {
    return { kind: 'reading', event: msg as LiveEvent };
  }
  return { kind: 'other' };
}

/** What a page does with the stream's messages. */
export interface StreamHandlers {
  reading?: (e: LiveEvent) => void;
  alarm?: (e: AlarmEvent) => void;
  advice?: (e: AdviceEvent) => void;
  /** Called after a reconnect: events may have been missed, reload state if it matters. */
  reconnect?: () => void;
}

export class LiveStream {
  private ws: WebSocket | null = null;
  private closed = false;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  skipped = 0;

  constructor(
    private readonly filter: StreamFilter,
    private readonly handlers: StreamHandlers,
  ) {
    this.connect();
  }

  private connect(): void {
    announce(this.attempts ? 'reconnecting' : 'connecting', '');
    const ws = new WebSocket(streamUrl(location, this.filter, getToken()));
    this.ws = ws;
    ws.onopen = () => {
      if (this.attempts) this.handlers.reconnect?.();
      this.attempts = 0;
      announce('live', '');
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      const msg = parseMessage(m.data);
      switch (msg.kind) {
        case 'lagged':
          this.skipped += msg.skipped;
          stats.skipped += msg.skipped;
          announce('live', `${this.skipped} events skipped (too slow)`);
          return;
        case 'reading':
          // Only readings count as chart events (the frame test reads `stats.events`).
          stats.events++;
          this.handlers.reading?.(msg.event);
          return;
        case 'alarm':
          this.handlers.alarm?.(msg.event);
          return;
        case 'advice':
          this.handlers.advice?.(msg.event);
          return;
        case 'other':
          return;
      }
    };
    ws.onclose = () => {
      this.ws = null;
      if (this.closed) return;
      announce('reconnecting', '');
      this.timer = setTimeout(() => this.connect(), backoffMs(this.attempts++));
    };
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      // Closing a socket still connecting makes the browser log an error; let it open first.
      if (this.ws.readyState === WebSocket.CONNECTING) {
        const ws = this.ws;
        ws.onopen = () => ws.close();
      } else {
        this.ws.close();
      }
    }
    this.ws = null;
    announce('closed', '');
  }
}
