// The dashboard shell: header, hash router, sign-in guard and page lifecycle.

import './style.css';
import './perf';

import { clearToken, getToken, onUnauthorized } from './api';
import { h, notice, replace } from './dom';
import { onLiveStatus, type LiveStatus } from './live';
import { adviceItemPage, advicePage } from './pages/advice';
import { alarmPage, alarmsPage } from './pages/alarms';
import { fleetPage } from './pages/fleet';
import { modelsPage } from './pages/models';
import type { Page } from './pages/page';
import { signInPage } from './pages/signin';
import { twinPage } from './pages/twin';
import { whatIfPage } from './pages/whatif';
import { parseRoute, type Route, type RouteName } from './router';

const main = document.getElementById('main') as HTMLElement;
const statusEl = document.getElementById('live-status') as HTMLElement;
const signOut = document.getElementById('signout') as HTMLButtonElement;
const nav = document.getElementById('nav') as HTMLElement;

let current: Page | null = null;

const STATUS_TEXT: Record<LiveStatus, string> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  closed: '',
};

onLiveStatus((s, detail) => {
  statusEl.dataset.status = s;
  statusEl.textContent = [STATUS_TEXT[s], detail].filter(Boolean).join(' · ');
});

onUnauthorized(() => {
  clearToken();
  const route = parseRoute(location.hash);
  if (route.name !== 'signin') location.hash = `#/signin?expired=1&next=${encodeURIComponent(route.path)}`;
});

signOut.addEventListener('click', () => {
  clearToken();
  location.hash = '#/signin';
});

document.querySelector('.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  (main.querySelector('h1') ?? main).focus();
});

/** The routes each header link stands for. */
const NAV_SECTIONS: Record<string, RouteName[]> = {
  '#/': ['fleet', 'twin', 'whatif'],
  '#/alarms': ['alarms', 'alarm'],
  '#/advice': ['advice', 'adviceItem'],
  '#/models': ['models', 'model'],
};

function notFound(route: Route): Page {
  const el = h('section', null, h('h1', { tabindex: '-1' }, 'Not found'), notice('info', `Nothing at ${route.path}.`), h('p', null, h('a', { href: '#/' }, 'Back to the fleet')));
  return { el, title: 'Not found', dispose() {} };
}

function pageFor(route: Route): Page {
  switch (route.name) {
    case 'signin':
      return signInPage(route);
    case 'fleet':
      return fleetPage();
    case 'twin':
      return twinPage(route);
    case 'whatif':
      return whatIfPage(route);
    case 'alarms':
      return alarmsPage(route);
    case 'alarm':
      return alarmPage(route);
    case 'advice':
      return advicePage(route);
    case 'adviceItem':
      return adviceItemPage(route);
    case 'models':
    case 'model':
      return modelsPage(route);
    default:
      return notFound(route);
  }
}

function render(): void {
  // Only `#/...` is a route; other fragments (none today) are left to the browser.
  if (location.hash && !location.hash.startsWith('#/')) return;
  const route = parseRoute(location.hash);
  const signedIn = getToken() !== null;
  if (!signedIn && route.name !== 'signin') {
    const next = route.path === '/' ? '' : `?next=${encodeURIComponent(route.path)}`;
    location.replace(`#/signin${next}`);
    return;
  }
  current?.dispose();
  current = pageFor(route);
  replace(main, current.el);
  document.title = `${current.title} · doppel`;
  signOut.hidden = !signedIn;
  nav.hidden = !signedIn;
  for (const a of nav.querySelectorAll('a')) {
    const section = NAV_SECTIONS[a.getAttribute('href') ?? ''] ?? [];
    if (section.includes(route.name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (route.name !== 'signin') (main.querySelector('h1') as HTMLElement | null)?.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', render);
render();

