// A tiny element builder: enough for a dashboard without a UI framework.

type Child = Node | string | number | null | undefined | false | Child[];

export type Attrs = {
  [key: string]: unknown;
  class?: string | null;
  text?: string;
};

/**
 * `h('a', {href: '#/', class: 'x', onclick: f}, 'text', child)`. `on*` keys add listeners,
 * `text` sets textContent, `value`/`checked`/`disabled`/`hidden`/`selected` are set as
 * properties, `null`/`false` attributes are left out, every other key is an attribute.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v as EventListener);
      } else if (k === 'text') {
        el.textContent = String(v);
      } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') {
        (el as unknown as Record<string, unknown>)[k] = v;
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces the children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A link to a hash route. */
export function link(route: string, ...children: Child[]): HTMLAnchorElement {
  return h('a', { href: `#${route}` }, ...children);
}

/** Encodes one path segment of a hash route. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

/** A notice box; `role=alert` for errors so screen readers announce them. */
export function notice(kind: 'error' | 'info', text: string): HTMLElement {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
}

/** The coloured dot and word of a health colour. */
export function healthBadge(health: string, label: string, title?: string): HTMLElement {
  return h(
    'span',
    { class: `health health-${health}`, title: title ?? null },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    label,
  );
}

/**
 * Puts focus back on the control with `key` (its `data-focus`, or its id) inside `root`, or
 * on `fallback` when it is gone or disabled: pages that redraw on live events keep the
 * keyboard user's place.
 */
export function refocus(root: HTMLElement, key: string | undefined, fallback: () => HTMLElement | null): void {
  if (!key) return;
  const el = root.querySelector<HTMLElement>(`[data-focus="${CSS.escape(key)}"]`) ?? root.querySelector<HTMLElement>(`#${CSS.escape(key)}`);
  if (el && !(el as HTMLButtonElement).disabled) el.focus();
  else fallback()?.focus();
}

/** The `data-focus` key (or id) of the focused element, if it is inside `root`. */
export function focusKey(root: HTMLElement): string | undefined {
  const a = document.activeElement;
  return a instanceof HTMLElement && root.contains(a) ? a.dataset.focus ?? (a.id || undefined) : undefined;
}

/** Form fields whose value the user types or picks (not checkboxes, radios or buttons). */
const TYPED = 'input[id]:not([type="checkbox"]):not([type="radio"]):not([type="button"]):not([type="submit"]), select[id], textarea[id]';

/** What the user typed or picked in `root`'s form fields, by id: redraws put it back. */
export function typedValues(root: HTMLElement): Map<string, string> {
  const out = new Map<string, string>();
  for (const i of root.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(TYPED)) out.set(i.id, i.value);
  return out;
}

export function restoreTyped(root: HTMLElement, typed: Map<string, string>): void {
  for (const [id, v] of typed) {
    const i = root.querySelector<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(`#${CSS.escape(id)}`);
    if (i) i.value = v;
  }
}

/**
 * Runs one request on behalf of the controls in `group`, every enabled button of it disabled
 * meanwhile (`aria-busy` set). `done` gets the answer, `failed` the error (the buttons are
 * enabled again first), each with the `data-focus` key (or id) of the control that had focus
 * when it started: disabling its button takes focus away, so the page puts it back.
 */
export async function whileBusy<T>(
  group: HTMLElement,
  f: () => Promise<T>,
  done: (answer: T, focus?: string) => void,
  failed: (err: unknown, focus?: string) => void,
): Promise<void> {
  const active = document.activeElement;
  const focus = active instanceof HTMLElement && group.contains(active) ? active.dataset.focus ?? (active.id || undefined) : undefined;
  const buttons = [...group.querySelectorAll('button')].filter((b) => !b.disabled);
  for (const b of buttons) b.disabled = true;
  group.setAttribute('aria-busy', 'true');
  try {
    done(await f(), focus);
  } catch (err) {
    for (const b of buttons) b.disabled = false;
    failed(err, focus);
  } finally {
    group.removeAttribute('aria-busy');
  }
}
