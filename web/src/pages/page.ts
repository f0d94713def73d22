// What every page is: an element the shell mounts, a title, and a dispose() that stops its
// streams, timers and observers when the user leaves.

import type { Route } from '../router';

export interface Page {
  el: HTMLElement;
  title: string;
  dispose(): void;
}

export type PageFactory = (route: Route) => Page;
