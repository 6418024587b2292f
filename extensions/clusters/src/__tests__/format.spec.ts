import { formatAge, formatBytes, formatResources, parseCount } from '../format';
import { IClusterInfo } from '../tokens';

describe('formatAge', () => {
  it.each([
    [null, '–'],
    [-1, '–'],
    [0, '0 s'],
    [59.9, '59 s'],
    [60, '1 min'],
    [3599, '59 min'],
    [3600 + 5 * 60, '1 h 05 min'],
    [2 * 86400 + 4 * 3600 + 59, '2 d 4 h']
  ])('%p → %p', (seconds, text) => {
    expect(formatAge(seconds)).toBe(text);
  });
});

describe('formatBytes', () => {
  it.each([
    [null, '–'],
    [512, '512 B'],
    [2 ** 29, '512.0 MiB'],
    [3 * 2 ** 30, '3.0 GiB'],
    [2 ** 50, '1024.0 TiB']
  ])('%p → %p', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('formatResources', () => {
  const base: IClusterInfo = {
    name: 'c',
    status: 'running',
    workers: 2,
    threads: 2,
    memory_bytes: 2 ** 30,
    start_time: null,
    age_seconds: null,
    dashboard_link: null,
    options: {}
  };
  it('shows cores and memory', () => {
    expect(formatResources(base)).toBe('2 cores · 1.0 GiB');
    expect(formatResources({ ...base, threads: 1 })).toBe('1 core · 1.0 GiB');
  });
  it('says nothing while unknown', () => {
    expect(formatResources({ ...base, threads: null, memory_bytes: null })).toBe('–');
  });
});

describe('parseCount', () => {
  it.each([
    ['0', 0],
    [' 8 ', 8],
    ['10000', 10000]
  ])('accepts %p', (text, count) => {
    expect(parseCount(text)).toBe(count);
  });
  it.each(['', '-1', '2.5', '1e3', 'two', '10001'])('refuses %p with a message', text => {
    expect(typeof parseCount(text)).toBe('string');
  });
});
