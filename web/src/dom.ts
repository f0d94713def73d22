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
