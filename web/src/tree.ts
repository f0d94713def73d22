// The twin hierarchy from the parent links of `GET /api/v1/twins`.

export interface TreeItem {
  id: string;
  name?: string;
  parent?: string;
}

export interface TreeNode<T extends TreeItem> {
  item: T;
  depth: number;
  children: TreeNode<T>[];
}

function label(t: TreeItem): string {
  return t.name || t.id;
}

function byLabel(a: TreeItem, b: TreeItem): number {
  return label(a).localeCompare(label(b), undefined, { numeric: true }) || a.id.localeCompare(b.id);
}

/**
 * Builds the forest: a twin whose parent is absent from the list (or that sits on a parent
 * cycle, which the catalog refuses but a hand-edited file could hold) becomes a root, so every
 * twin appears exactly once. Siblings are sorted by name, numbers in names compared as numbers.
 */
export function buildTree<T extends TreeItem>(items: readonly T[]): TreeNode<T>[] {
  const byId = new Map(items.map((t) => [t.id, t]));
  const onCycle = (t: T): boolean => {
    const seen = new Set<string>([t.id]);
    let p = t.parent;
    while (p !== undefined && byId.has(p)) {
      if (seen.has(p)) return true;
      seen.add(p);
      p = byId.get(p)?.parent;
    }
    return false;
  };
  const kids = new Map<string, T[]>();
  const roots: T[] = [];
  for (const t of items) {
    if (t.parent === undefined || !byId.has(t.parent) || t.parent === t.id || onCycle(t)) {
      roots.push(t);
    } else {
      const list = kids.get(t.parent) ?? [];
      list.push(t);
      kids.set(t.parent, list);
    }
  }
  const build = (t: T, depth: number): TreeNode<T> => ({
    item: t,
    depth,
    children: (kids.get(t.id) ?? []).sort(byLabel).map((c) => build(c, depth + 1)),
  });
  return roots.sort(byLabel).map((t) => build(t, 0));
}

/** One visible row of the tree. */
export interface TreeRow<T extends TreeItem> {
  node: TreeNode<T>;
  /** Position among its siblings, 1-based, and their count (for aria-posinset/setsize). */
  pos: number;
  size: number;
}

/** Rows in display order; children of collapsed nodes are left out. */
export function visibleRows<T extends TreeItem>(
  forest: readonly TreeNode<T>[],
  expanded: (id: string) => boolean,
): TreeRow<T>[] {
  const out: TreeRow<T>[] = [];
  const walk = (nodes: readonly TreeNode<T>[]) => {
    nodes.forEach((node, i) => {
      out.push({ node, pos: i + 1, size: nodes.length });
      if (node.children.length && expanded(node.item.id)) walk(node.children);
    });
  };
  walk(forest);
  return out;
}

/** Every node below `node`, depth first. */
export function descendants<T extends TreeItem>(node: TreeNode<T>): TreeNode<T>[] {
  const out: TreeNode<T>[] = [];
  const walk = (n: TreeNode<T>) => {
    for (const c of n.children) {
      out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

/** The chain of ancestors of `id`, root first, not including `id` itself. */
export function ancestors<T extends TreeItem>(items: readonly T[], id: string): T[] {
  const byId = new Map(items.map((t) => [t.id, t]));
  const out: T[] = [];
  const seen = new Set<string>([id]);
  let p = byId.get(id)?.parent;
  while (p !== undefined && byId.has(p) && !seen.has(p)) {
    seen.add(p);
    const t = byId.get(p) as T;
    out.unshift(t);
    p = t.parent;
  }
  return out;
}

/** Ids of the nodes whose own item or a descendant's matches `keep`, with their ancestors. */
export function matching<T extends TreeItem>(
  forest: readonly TreeNode<T>[],
  keep: (item: T) => boolean,
): Set<string> {
  const out = new Set<string>();
  const walk = (n: TreeNode<T>): boolean => {
    let any = keep(n.item);
    for (const c of n.children) any = walk(c) || any;
    if (any) out.add(n.item.id);
    return any;
  };
  forest.forEach(walk);
  return out;
}
