import { describe, expect, it } from 'vitest';

import { ancestors, buildTree, descendants, matching, visibleRows } from './tree';

const twins = [
  { id: 'pump-10', name: 'Pump 10', parent: 'line-1' },
  { id: 'pump-2', name: 'Pump 2', parent: 'line-1' },
  { id: 'line-1', name: 'Line 1', parent: 'site-1' },
  { id: 'site-1', name: 'Plant A' },
  { id: 'orphan', name: 'Orphan', parent: 'gone' },
  { id: 'motor-1', name: 'Motor', parent: 'pump-2' },
];

describe('buildTree', () => {
  it('nests by parent and sorts siblings by name, numbers as numbers', () => {
    const forest = buildTree(twins);
    expect(forest.map((n) => n.item.id)).toEqual(['orphan', 'site-1']);
    const line = forest[1].children[0];
    expect(line.item.id).toBe('line-1');
    expect(line.depth).toBe(1);
    expect(line.children.map((n) => n.item.id)).toEqual(['pump-2', 'pump-10']);
    expect(line.children[0].children[0].depth).toBe(3);
  });

  it('puts every twin in exactly once, even on a parent cycle', () => {
    const cyclic = [
      { id: 'a', parent: 'b' },
      { id: 'b', parent: 'a' },
      { id: 'c', parent: 'c' },
      { id: 'd', parent: 'a' },
    ];
    const forest = buildTree(cyclic);
    const all = forest.flatMap((n) => [n, ...descendants(n)]).map((n) => n.item.id);
    expect(all.sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('visibleRows', () => {
  it('skips the children of collapsed nodes and numbers siblings', () => {
    const forest = buildTree(twins);
    const all = visibleRows(forest, () => true).map((r) => r.node.item.id);
    expect(all).toEqual(['orphan', 'site-1', 'line-1', 'pump-2', 'motor-1', 'pump-10']);
    const rows = visibleRows(forest, (id) => id !== 'line-1');
    expect(rows.map((r) => r.node.item.id)).toEqual(['orphan', 'site-1', 'line-1']);
    expect(rows[1]).toMatchObject({ pos: 2, size: 2 });
  });
});

describe('ancestors and matching', () => {
  it('walks up to the root', () => {
    expect(ancestors(twins, 'motor-1').map((t) => t.id)).toEqual(['site-1', 'line-1', 'pump-2']);
    expect(ancestors(twins, 'site-1')).toEqual([]);
  });

  it('keeps matches with their ancestors', () => {
    const keep = matching(buildTree(twins), (t) => t.id === 'motor-1');
    expect([...keep].sort()).toEqual(['line-1', 'motor-1', 'pump-2', 'site-1']);
  });
});
