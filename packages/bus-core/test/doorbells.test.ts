import { describe, expect, it } from '@jest/globals';
import { CardDoorbellAllocator, DOORBELL_POLICY, HostDoorbellAllocator, MockIrqLines } from '../src/index.js';

describe('doorbell allocators', () => {
  it('the host allocator goes round robin over its 4 doorbells', () => {
    const a = new HostDoorbellAllocator(4);
    expect(Array.from({ length: 6 }, () => a.next())).toEqual([0, 1, 2, 3, 0, 1]);
  });

  it('the card allocator picks the least used of its 8 doorbells, lowest first', () => {
    const a = new CardDoorbellAllocator(8);
    expect(a.next()).toBe(0);
    a.use(0);
    a.use(1);
    expect(a.next()).toBe(2);
    for (let db = 2; db < 8; db++) a.use(db);
    expect(a.next()).toBe(0);
    a.use(0);
    a.release(5);
    expect(a.next()).toBe(5);
    expect(a.usage(0)).toBe(2);
    expect(() => a.release(5)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => a.use(8)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const wide = new CardDoorbellAllocator(16);
    for (let db = 0; db < 15; db++) wide.use(db);
    expect(wide.next()).toBe(15);
  });

  it('refuse doorbell counts outside 1-64', () => {
    for (const count of [0, 65, 1.5]) {
      expect(() => new HostDoorbellAllocator(count)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      expect(() => new CardDoorbellAllocator(count)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
  });

  it('are what the mock lines pick with, so a mock and a driver choose the same doorbells', () => {
    const host = new MockIrqLines({ count: 4 });
    const hostAlloc = new HostDoorbellAllocator(4);
    expect(Array.from({ length: 9 }, () => host.nextDb())).toEqual(
      Array.from({ length: 9 }, () => hostAlloc.next()),
    );
    const card = new MockIrqLines({ count: 16, allocatable: 8, policy: DOORBELL_POLICY.LEAST_USED });
    const cardAlloc = new CardDoorbellAllocator(8);
    const cookies = [];
    for (const db of [0, 0, 3, 12, 1, 2, 4, 5, 6, 7]) {
      cookies.push(card.request(() => undefined, null, 'x', null, db));
      if (db < 8) cardAlloc.use(db);
      expect(card.nextDb()).toBe(cardAlloc.next());
    }
    card.free(cookies[2]!, null);
    cardAlloc.release(3);
    expect(card.nextDb()).toBe(3);
    expect(cardAlloc.next()).toBe(3);
  });
});
